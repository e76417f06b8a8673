"""Acceptance: a real ``feedback-bot serve`` process configured as the report's own deployment,
checked from outside.

The report publishes the mailbox ntzfwjgdw@163.com, and citizens write from 163.com and qq.com:
their Message-IDs end in the same domain as the mailbox. A 163.com citizen's letter must be
filed, classified and acknowledged, and their reply to the acknowledgement (as 163's webmail
writes it) must become a follow-up of the same case. Mail arrives by Maildir (as a local
delivery agent writes it) or by IMAP from a server that, like imap.163.com, refuses SELECT until
the client has sent ID. The relay is an aiosmtpd sink.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP, compat32
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import select

from handlers.tracking import find_tracking_no
from storage.db import make_engine, sessionmaker
from storage.models import Followup, Outbox, RawIntake, Submission
from testing.dovecot import Dovecot, ImapAccount
from testing.imap_gate import IdGate
from testing.serve import MAILBOX, PUBLIC_HOST, deployment
from testing.smtp import SmtpSink
from tests.bot.citizen.steps import lookup, query_code
from tests.bot.helpers import submit, tracking_no, wait_mail
from tests.bot.sources.mailtools import append, provider_msgid, until

CITIZEN = "chen.xiaoming1975@163.com"
LETTER = ("我是通州区的居民，去年在区法院打赢了一起劳务费官司，判决生效快一年了，"
          "执行局一直说对方没有财产可供执行，可对方天天开着新车。希望督促法院加强执行工作。")


def citizen_mail(subject: str, body: str, *, msgid: str,
                 headers: dict[str, str] | None = None, charset: str = "utf-8") -> bytes:
    """A citizen's letter as 163's webmail sends it; ``charset="gbk"``: subject and body in GBK
    (base64, as Coremail writes them), else UTF-8."""
    msg = EmailMessage()
    msg["From"] = f"陈晓明 <{CITIZEN}>"
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = msgid
    msg["X-Mailer"] = "Coremail Webmail Server Version 2023.2-cmXT5 build 20231215"
    for name, value in (headers or {}).items():
        msg[name] = value
    if charset == "utf-8":
        msg.set_content(body)
        return msg.as_bytes(policy=SMTP)
    msg.set_content(body, charset=charset, cte="base64")
    # The modern header policy writes every encoded word in UTF-8: the subject is put back in
    # the letter's own charset through the compat32 API, which writes an encoded word as given.
    old = message_from_bytes(msg.as_bytes(policy=SMTP), policy=compat32)
    old.replace_header("Subject", Header(subject, charset).encode())
    return old.as_bytes(policy=compat32.clone(linesep="\r\n"))


def deliver(maildir: Path, name: str, raw: bytes) -> None:
    """Maildir delivery as an MDA does it: write into tmp/, then rename into new/."""
    (maildir / "tmp").mkdir(parents=True, exist_ok=True)
    (maildir / "new").mkdir(parents=True, exist_ok=True)
    tmp = maildir / "tmp" / name
    tmp.write_bytes(raw)
    os.utime(tmp, (0, 0))
    tmp.rename(maildir / "new" / name)


@asynccontextmanager
async def database(db_url: str) -> AsyncIterator[sessionmaker]:
    engine = make_engine(db_url)
    try:
        yield sessionmaker(engine)
    finally:
        await engine.dispose()


async def api_items(base: str, token: str, view: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(
            f"{base}/api/v1/submissions?view={view}", headers=headers) as resp:
        assert resp.status == 200
        return (await resp.json())["items"]


async def test_163_citizen_is_acknowledged_and_their_reply_is_a_followup(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    maildir = tmp_path / "maildir"
    site = deployment(tmp_path, db_url, smtp_sink.port, maildir=maildir)
    token, base = site.api_token(), site.base_url
    letter_id = provider_msgid(CITIZEN)
    assert letter_id.endswith("@163.com>")  # the same domain as our mailbox
    async with site.serving():
        deliver(maildir, "1764000000.M1P1.mx.163", citizen_mail(
            "法院判决一年了还执行不到位", LETTER, msgid=letter_id))
        [ack] = await wait_mail(smtp_sink, 1, timeout=60)
        assert ack.rcpt_tos == [CITIZEN]
        assert ack.message["From"].addresses[0].addr_spec == MAILBOX
        assert ack.message["In-Reply-To"] == letter_id
        ack_id = ack.message["Message-ID"]
        assert ack_id.endswith(f"@{PUBLIC_HOST}>")  # our own host, never 163.com
        [item] = await api_items(base, token, "default")  # in the queue, not hidden
        assert item["tracking_no"] in str(ack.message["Subject"])
        assert not item["auto"] and item["category"] not in ("unclassified", "spam")
        assert item["confidence"] is not None  # classified

        # The citizen answers from 163's webmail: "Re:", In-Reply-To our ID, quoting us.
        quoted = "\n".join("> " + line for line in
                           ack.message.get_body(("plain",)).get_content().splitlines()[:6])
        reply = citizen_mail(
            "Re: " + str(ack.message["Subject"]),
            "补充一下：对方名下有一辆新车，车牌号我已经拍照，可以提供给执行局。\n\n"
            f"在 2026-11-25 10:00:00，\"南通市委政法委\" <{MAILBOX}> 写道：\n{quoted}\n",
            msgid=provider_msgid(CITIZEN),
            headers={"In-Reply-To": ack_id, "References": f"{letter_id} {ack_id}"})
        deliver(maildir, "1764000100.M2P1.mx.163", reply)
        async with database(db_url) as sessions:
            async def both_done() -> bool:
                async with sessions() as db:
                    rows = list(await db.scalars(select(RawIntake)))
                return len(rows) == 2 and all(r.state == "done" for r in rows)

            await until(both_done, timeout=30, what="both letters filed")
            async with sessions() as db:
                subs = list(await db.scalars(select(Submission)))
                fus = list(await db.scalars(select(Followup)))
                acks = list(await db.scalars(select(Outbox)))
        [sub] = subs  # not a second case, and not filed as an auto-reply
        assert sub.auto is None and sub.message_id == letter_id.strip("<>")
        [fu] = fus
        assert fu.submission_id == sub.id and "车牌号" in fu.text
        assert len(acks) == 1  # a follow-up gets no second acknowledgement
        assert [i["tracking_no"] for i in await api_items(base, token, "auto")] == []


def imap_settings(gate: IdGate, account: ImapAccount) -> dict[str, object]:
    """The [imap] section for ``account``'s mailbox, reached through the 163 ID gate."""
    return {"host": gate.host, "port": gate.port, "ssl": False, "starttls": False,
            "user": account.user, "password": account.password, "poll_seconds": 0.5}


async def test_serve_reads_the_163_mailbox_that_wants_imap_id(
        db_url: str, tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        smtp_sink: SmtpSink) -> None:
    with IdGate((dovecot.host, dovecot.port)) as gate:
        site = deployment(tmp_path, db_url, smtp_sink.port,
                          imap=imap_settings(gate, imap_account))
        await append(imap_account, citizen_mail("法院判决一年了还执行不到位", LETTER,
                                                msgid=provider_msgid(CITIZEN)))
        async with site.serving():
            [ack] = await wait_mail(smtp_sink, 1, timeout=60)
            assert ack.rcpt_tos == [CITIZEN]
        assert gate.refused == 0 and gate.ids



async def _api_action(base: str, token: str, tn: str, body: dict) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/v1/submissions/{tn}/actions", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_casework_through_the_api_of_a_real_serve(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """From outside, as a provincial platform would: accept and extend a 163.com citizen's
    letter through the write API (the notices arrive in their mailbox), an unknown action is
    refused with a message, and a web letter without an address, accepted and answered, shows
    the answer on its status page."""
    maildir = tmp_path / "maildir"
    site = deployment(tmp_path, db_url, smtp_sink.port, maildir=maildir)
    token, base = site.api_token(), site.base_url
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    async with site.serving():
        deliver(maildir, "1764000200.M3P1.mx.163", citizen_mail(
            "法院判决一年了还执行不到位", LETTER, msgid=provider_msgid(CITIZEN)))
        [ack] = await wait_mail(smtp_sink, 1, timeout=60)
        tn = find_tracking_no(str(ack.message["Subject"]))
        assert tn

        status, sub = await _api_action(base, token, tn, {"action": "accept"})
        assert status == 200 and sub["status"] == "accepted"
        assert sub["handle_due"] == str(today + timedelta(days=60))
        notice = (await wait_mail(smtp_sink, 2, timeout=30))[1]
        assert notice.rcpt_tos == [CITIZEN] and "受理告知书" in str(notice.message["Subject"])
        text = notice.message.get_body(("plain",)).get_content()
        assert tn in text and (today + timedelta(days=60)).strftime("%Y年%m月%d日") in text
        assert notice.message["In-Reply-To"] == ack.message["Message-ID"]

        reason = "需要调取执行卷宗并约谈被执行人"
        status, sub = await _api_action(base, token, tn, {"action": "extend", "reason": reason})
        assert status == 200
        moved = date.fromisoformat(sub["handle_due"]) - today
        assert timedelta(days=89) <= moved <= timedelta(days=90)
        extension = (await wait_mail(smtp_sink, 3, timeout=30))[2]
        assert "延期办理告知书" in str(extension.message["Subject"])
        assert reason in extension.message.get_body(("plain",)).get_content()

        status, answer = await _api_action(base, token, tn, {"action": "approve"})
        assert status == 400 and "未知的操作" in answer["error"]

        # A web letter without an e-mail address: the answer reaches the status page only.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page_status, html = await submit(http, base, body="街道办门口的公告栏玻璃碎了一个月，"
                                             "小孩子经过很危险，希望尽快修好。")
            assert page_status == 200
            web_tn, code = tracking_no(html), query_code(html)
            answer_text = "街道办已于昨日更换公告栏玻璃，并加装了防护栏。"
            for body in ({"action": "accept"}, {"action": "resolve", "reply": answer_text}):
                for _ in range(100):  # the form answers before the letter is filed
                    status, got = await _api_action(base, token, web_tn, body)
                    if status != 404:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200, got
            found = await lookup(http, base, web_tn, code)
            assert found.status == 303
            # public_url is https (behind the proxy), so the access cookie is Secure and the
            # jar keeps it from plain http: send it as the proxied browser would.
            access = found.cookies["fb_status"].value
            async with http.get(f"{base}/status", headers={"Cookie": f"fb_status={access}"}) as resp:
                page = await resp.text()
        assert answer_text in page and "信访事项答复意见书" in page and "暂时还没有答复" not in page
        assert len(smtp_sink.messages) == 3  # nothing mailed for the letter without an address
