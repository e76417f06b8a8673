"""Letters from non-ASCII addresses (用户@例子.广告, 张三@例子.中国): always filed, acknowledged by
SMTPUTF8 when the relay offers it, otherwise filed without an acknowledgement that staff can see.

Real parts: the web form and the Maildir source of a running service, aiosmtpd with and without
SMTPUTF8, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import email
import os
from email import policy
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.app import start
from bot.workers.outbox import NO_SMTPUTF8
from storage.models import Outbox, RawIntake, Submission
from testing.smtp import SmtpSink
from tests.bot.console.support import add_user, login
from tests.bot.helpers import filed, submit, tracking_no, wait_mail
from tests.bot.sources.mailtools import until
from tests.conftest import make_settings

LETTER = "我家楼下的夜市油烟很大，窗户都不敢开，希望有关部门管一管，谢谢。"
UNICODE_LOCAL = ["用户@例子.广告", "张三@例子.中国", "张三@example.com"]
IDN_ONLY = {"li.si@例子.中国": "li.si@xn--fsqu00a.xn--fiqs8s"}


def _read(content: bytes) -> email.message.EmailMessage:
    """As a mail program of our time reads an SMTPUTF8 message: its headers as UTF-8 text."""
    return email.message_from_string(content.decode("utf-8"), policy=policy.default)


async def _rows(service, model):  # type: ignore[no-untyped-def]
    async with service.runtime.sessions() as s:
        return list(await s.scalars(select(model).order_by(model.id)))


async def test_smtputf8_relay_acknowledges_every_non_ascii_address(db_url: str, tmp_path: Path):
    with SmtpSink(smtputf8=True) as sink:
        service = await start(make_settings(db_url, tmp_path, sink))
        try:
            numbers = {}
            async with aiohttp.ClientSession() as http:
                for addr in [*UNICODE_LOCAL, *IDN_ONLY]:
                    status, html = await submit(http, service.base_url, body=LETTER, email=addr,
                                                name="王五")
                    assert status == 200, html
                    numbers[addr] = tracking_no(html)
            got = await wait_mail(sink, 4, timeout=20)
            by_rcpt = {m.rcpt_tos[0]: m for m in got}
            for addr in UNICODE_LOCAL:
                assert "SMTPUTF8" in by_rcpt[addr].mail_options
                msg = _read(by_rcpt[addr].content)
                assert msg["To"].addresses[0].addr_spec == addr
                assert msg["To"].addresses[0].display_name == "王五"
                assert numbers[addr] in msg["Subject"]
            # an ASCII local part needs no SMTPUTF8: the domain goes as IDNA
            for addr, wire in IDN_ONLY.items():
                assert "SMTPUTF8" not in by_rcpt[wire].mail_options
                assert by_rcpt[wire].content.split(b"\r\n\r\n")[0].isascii()
                assert numbers[addr] in _read(by_rcpt[wire].content)["Subject"]
            assert {r.state for r in await _rows(service, RawIntake)} == {"done"}

            async def all_sent() -> bool:
                return {r.state for r in await _rows(service, Outbox)} == {"sent"}
            await until(all_sent, what="every acknowledgement marked sent")
        finally:
            await service.stop()


async def test_without_smtputf8_the_letter_is_filed_and_staff_see_why(
        db_url: str, tmp_path: Path):
    """The relay (like many) does not offer SMTPUTF8: the letter is filed all the same, its
    acknowledgement fails at once (no day of retries), and its console page says why."""
    smtp_sink = SmtpSink(smtputf8=False).start()
    service = await start(make_settings(db_url, tmp_path, smtp_sink))
    try:
        async with aiohttp.ClientSession() as http:
            status, html = await submit(http, service.base_url, body=LETTER,
                                        email="用户@例子.广告")
            assert status == 200
            number = tracking_no(html)
            _, html2 = await submit(http, service.base_url, body=LETTER + "另外", email="li.si@例子.中国")
        [idn] = await wait_mail(smtp_sink, 1)
        assert idn.rcpt_tos == ["li.si@xn--fsqu00a.xn--fiqs8s"]
        await filed(service)

        async def failed() -> bool:
            return any(r.state == "failed" for r in await _rows(service, Outbox))
        await until(failed, what="the acknowledgement failed")
        row = next(r for r in await _rows(service, Outbox) if r.state == "failed")
        assert row.attempts == 1 and NO_SMTPUTF8 in (row.last_error or "")
        sub = next(s for s in await _rows(service, Submission) if s.tracking_no == number)
        assert sub.from_addr == "用户@例子.广告"
        assert "SMTPUTF8" in (sub.flags or {}).get("ack_failed", "")
        await add_user(service, "rev", "reviewer")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, service.base_url, "rev")
            async with http.get(f"{service.base_url}/console/s/{sub.id}") as resp:
                page = await resp.text()
        assert "确认邮件未发出" in page and "SMTPUTF8" in page
        assert len(smtp_sink.messages) == 1
    finally:
        await service.stop()
        smtp_sink.stop()


async def test_mail_from_a_non_ascii_address_through_the_maildir(db_url: str, tmp_path: Path):
    """A mail program that writes its From as UTF-8 (RFC 6532), and one whose display name is
    an encoded-word hiding CR/LF: both filed and acknowledged, the name on one line."""
    maildir = tmp_path / "drop"
    with SmtpSink(smtputf8=True) as sink:
        service = await start(make_settings(db_url, tmp_path, sink,
                                            maildir={"path": str(maildir)}))
        try:
            await until(lambda: _is_dir(maildir / "new"), what="maildir created")
            utf8 = ("From: 张三 <张三@例子.中国>\r\nTo: feedback@zfw.example.gov.cn\r\n"
                    "Subject: 夜市油烟\r\nMessage-ID: <u1@例子.中国>\r\n"
                    "Date: Fri, 04 Dec 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n" + LETTER + "\r\n").encode()
            hostile = ("From: =?utf-8?b?5p2O5ZubDQpCY2M6IGFsbEBleGFtcGxlLmNvbQ==?= "
                       "<si@例子.中国>\r\nTo: feedback@zfw.example.gov.cn\r\n"
                       "Subject: =?utf-8?b?5rK554Of?=\r\nMessage-ID: <u2@example.com>\r\n"
                       "Date: Fri, 04 Dec 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: 8bit\r\n\r\n" + LETTER + "二\r\n").encode()
            for n, raw in enumerate((utf8, hostile)):
                target = maildir / "new" / f"170000000{n}.M1P2.host"
                target.write_bytes(raw)
                os.utime(target, (0, 0))
            got = await wait_mail(sink, 2, timeout=20)
            by_rcpt = {m.rcpt_tos[0]: _read(m.content) for m in got}
            assert by_rcpt["张三@例子.中国"]["To"].addresses[0].display_name == "张三"
            [to] = by_rcpt["si@xn--fsqu00a.xn--fiqs8s"]["To"].addresses
            assert to.display_name == "李四 Bcc: all@example.com"  # one line, kept as text
            assert by_rcpt["si@xn--fsqu00a.xn--fiqs8s"]["Bcc"] is None
            assert {r.state for r in await _rows(service, RawIntake)} == {"done"}
        finally:
            await service.stop()


async def _is_dir(path: Path) -> bool:
    await asyncio.sleep(0)
    return path.is_dir()
