"""Forwarding with feedback, staff entry's new fields and the SMS channel, against the real
servers (SQLite and PostgreSQL, aiosmtpd) and a recording SMS gateway stub (testing/sms.py)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import Service, start
from bot.config import Settings
from handlers import notices as notice_mod
from storage import review_list, submissions
from storage.clock import utcnow
from storage.models import Outbox
from testing.sms import SmsStub
from testing.smtp import SmtpSink
from tests.bot.casework.support import Staff, act, get
from tests.bot.console.support import entered, file_letter, login, page_csrf
from tests.conftest import make_settings

TZ = ZoneInfo("Asia/Shanghai")
MOBILE = "138 1234 5678"
LETTER = "我家门前的排水沟堵了半年，下雨就淹到院子里，多次找村里都没人管，请帮忙协调处理。"
# A real 1x1 PNG: the upload check judges files by their content.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
                       "hKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture
async def sms_stub() -> AsyncIterator[SmsStub]:
    stub = await SmsStub().start()
    try:
        yield stub
    finally:
        await stub.stop()


def _sms_settings(stub: SmsStub) -> dict[str, str]:
    return {"url": stub.url, "key_id": "LTAI-test", "secret": stub.secret,
            "sign_name": "南通政法", "template_code": "SMS_0001"}


@pytest.fixture
def settings(db_url: str, tmp_path: Path, smtp_sink: SmtpSink, sms_stub: SmsStub) -> Settings:
    return make_settings(db_url, tmp_path, smtp_sink, sms=_sms_settings(sms_stub),
                         casework={"units": ["法院", {"name": "公安局",
                                                      "email": "xfk@gaj.example.gov.cn"}]})


async def _sms_rows(service: Service, n: int, timeout: float = 20.0) -> list[Outbox]:
    """The outbox's SMS rows once ``n`` of them are marked sent (the gateway answers before
    the outbox commits its mark)."""
    async with asyncio.timeout(timeout):
        while True:
            async with service.runtime.sessions() as db:
                rows = list(await db.scalars(select(Outbox).where(Outbox.purpose == "sms")
                                             .order_by(Outbox.id)))
            if sum(r.state == "sent" for r in rows) >= n:
                return rows
            await asyncio.sleep(0.05)


async def _enter(http: aiohttp.ClientSession, base: str, fields: dict[str, str],
                 files: list[tuple[str, bytes, str]] = ()) -> tuple[int, str]:
    """Staff entry as the browser posts it: multipart, the CSRF token first."""
    form = aiohttp.FormData()
    form.add_field("csrf", await page_csrf(http, f"{base}/console/new"))
    async with http.get(f"{base}/console/new") as resp:
        nonce = re.search(r'name="nonce" value="([^"]+)"', await resp.text())
    assert nonce
    form.add_field("nonce", nonce.group(1))
    for key, value in fields.items():
        form.add_field(key, value)
    for name, data, ctype in files:
        form.add_field("attachments", data, filename=name, content_type=ctype)
    async with http.post(f"{base}/console/new", data=form) as resp:
        return resp.status, await resp.text()


async def test_a_posted_letter_keeps_its_receipt_time_address_and_scans_and_gets_sms_notices(
        service: Service, sms_stub: SmsStub, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    assert (await login(client, base, supervisor.name)).status == 302
    posted = (utcnow() - timedelta(days=4)).astimezone(TZ).replace(second=0, microsecond=0)
    status, html = await _enter(client, base, {
        "channel": "post", "name": "王大妈", "phone": MOBILE, "body": LETTER,
        "received": posted.strftime("%Y-%m-%dT%H:%M"), "address": "南通市崇川区和平桥街道12号"},
        [("第1页.png", PNG, "image/png")])
    assert status == 200, html
    sid = await entered(service, html)
    async with service.runtime.sessions() as db:
        sub = await review_list.get(db, sid)
        files = await review_list.attachments(db, sid)
    assert sub is not None and sub.received_at == posted  # the clocks run from the receipt
    assert sub.postal_address == "南通市崇川区和平桥街道12号"
    assert [(f.filename, f.content_type) for f in files] == [("第1页.png", "image/png")]
    assert service.runtime.blobs.path(files[0].sha256).read_bytes() == PNG
    _, got = await get(base, supervisor, sub.tracking_no)
    accept_due = (posted.date() + timedelta(days=15)).isoformat()
    assert got["accept_due"] == accept_due and got["postal_address"] == sub.postal_address

    # accepting it texts the citizen (no e-mail): the gateway's first answer is a 5xx, retried
    sms_stub.fail(1, 503)
    status, _ = await act(base, supervisor, sub.tracking_no, {"action": "accept"})
    assert status == 200
    [first] = await sms_stub.wait(1)
    assert sms_stub.attempts >= 2  # the 503 was retried by the outbox
    assert first.signed and first.params["PhoneNumbers"] == "13812345678"
    assert first.params["TemplateCode"] == "SMS_0001" and first.params["SignName"] == "南通政法"
    assert first.template_param == {"no": sub.tracking_no, "step": "已受理"}
    [row] = await _sms_rows(service, 1)
    assert row.attempts == 1  # one failed attempt before
    text = notice_mod.json.loads(row.message)["text"]
    assert sub.tracking_no in text and "已受理" in text and len(text) <= notice_mod.SMS_MAX

    # the print view of the notice carries the postal address
    async with client.get(f"{base}/console/submissions/{sid}/notices/1/print") as resp:
        page = await resp.text()
    assert resp.status == 200 and "南通市崇川区和平桥街道12号" in page


async def test_forwarding_unit_result_prefills_the_answer_and_no_sms_names_the_unit(
        service: Service, sms_stub: SmsStub, supervisor: Staff, reviewer: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    sid = await file_letter(service, LETTER, subject="排水沟堵塞")
    async with service.runtime.sessions.begin() as db:
        await review_list.update_fields(db, sid, phone="+86 139-0000-1111", restricted=True,
                                       restricted_by="staff")
        sub = await review_list.get(db, sid)
    assert sub is not None
    tn = sub.tracking_no
    due = (utcnow().astimezone(TZ).date() + timedelta(days=10)).isoformat()
    assert (await act(base, supervisor, tn, {"action": "forward", "unit": "公安局",
                                             "due": due}))[0] == 200
    # a result needs its text; a reviewer may not record one on a 举报
    status, answer = await act(base, supervisor, tn, {"action": "unit_result"})
    assert status == 400 and "办理结果" in answer["error"]
    assert (await act(base, reviewer, tn, {"action": "unit_result", "result": "x"}))[0] == 403
    result = "经现场核查，排水沟已由村委会组织清淤，并加装了盖板。"
    status, got = await act(base, supervisor, tn, {"action": "unit_result", "result": result})
    assert status == 200 and got["unit_result"] == result
    assert result in got["answer_draft"] and "公安局" in got["answer_draft"]
    # the reviewer's view of the 举报 carries neither the result nor the draft
    _, seen = await get(base, reviewer, tn)
    assert "unit_result" not in seen and "answer_draft" not in seen
    # the letter page's 办结 form starts from the unit's answer
    assert (await login(client, base, supervisor.name)).status == 302
    async with client.get(f"{base}/console/s/{sid}") as resp:
        page = await resp.text()
    assert re.search(r'<textarea id="reply-text" name="reply" rows="5">[^<]*排水沟已由村委会', page)
    status, _ = await act(base, supervisor, tn, {"action": "resolve", "reply": got["answer_draft"]})
    assert status == 200
    texts = await sms_stub.wait(2)  # 转办 and 答复: tracking number and step only
    assert [t.template_param["step"] for t in texts] == ["已转交有关单位办理", "已办结并答复"]
    for row in await _sms_rows(service, 2):
        assert "公安局" not in row.message.decode() and "排水沟" not in row.message.decode()
    await get(base, supervisor, tn)


async def test_no_sms_leaves_when_the_gateway_is_unconfigured(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink, sms_stub: SmsStub) -> None:
    settings = make_settings(db_url, tmp_path, smtp_sink, sms={"url": sms_stub.url})
    service = await start(settings)
    try:
        from tests.bot.casework.support import staff_with_token

        boss = await staff_with_token(service, "boss", "supervisor")
        sid = await file_letter(service, LETTER)
        async with service.runtime.sessions.begin() as db:
            await review_list.update_fields(db, sid, phone=MOBILE)
            sub = await review_list.get(db, sid)
        assert sub is not None
        status, got = await act(service.base_url, boss, sub.tracking_no, {"action": "accept"})
        assert status == 200 and got["status"] == "accepted"
        async with service.runtime.sessions() as db:
            kinds = list(await db.scalars(select(Outbox.purpose)))
            [given] = await notice_mod.store.for_submission(db, sid)
        assert "sms" not in kinds and given.not_mailed == "no address"
        assert sms_stub.attempts == 0
    finally:
        await service.stop()


@pytest.mark.parametrize("received, words", [
    ("2999-01-01T09:00", "不能晚于现在"), ("yesterday", "格式不正确"), ("2001-01-01T09:00", "一年前")])
async def test_staff_entry_refuses_a_bad_receipt_time_in_chinese(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession, received: str,
        words: str) -> None:
    base = service.base_url
    assert (await login(client, base, supervisor.name)).status == 302
    status, html = await _enter(client, base, {"channel": "phone", "body": LETTER,
                                               "received": received})
    assert status == 400 and words in html
    async with service.runtime.sessions() as db:
        assert await submissions.count(db) == 0


async def test_staff_entry_refuses_a_scan_that_is_not_an_image_or_pdf(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession) -> None:
    base = service.base_url
    assert (await login(client, base, supervisor.name)).status == 302
    status, html = await _enter(client, base, {"channel": "post", "body": LETTER},
                                [("scan.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")])
    assert status == 400 and "不是图片或 PDF" in html


def test_units_may_carry_an_address_and_the_plain_list_stays_valid() -> None:
    plain = Settings(casework={"units": ["法院", "公安局"]})
    assert plain.casework.units == ["法院", "公安局"] and plain.casework.unit_emails == {}
    mixed = Settings(casework={"units": ["法院", {"name": "公安局", "email": "a@gaj.gov.cn"}]})
    assert mixed.casework.units == ["法院", "公安局"]
    assert mixed.casework.unit_emails == {"公安局": "a@gaj.gov.cn"}
    assert Settings(casework={"remind_at": "07:45", "remind_workdays": True}
                    ).casework.remind_cron == "45 7 * * 1-5"
    for bad in ({"units": [{"name": "法院", "email": "not an address"}]},
                {"remind_at": "25:61"}, {"quiet_hours": "night"}):
        with pytest.raises(ValueError):
            Settings(casework=bad)


def test_sms_text_fits_one_message_for_every_notice() -> None:
    from bot.runtime import mail_templates
    from handlers.step import Context

    ctx = Context(session=None, secret=b"k", public_url="http://x", from_addr="a@b.c",  # type: ignore[arg-type]
                  from_name="n", loop_policy=None, templates=mail_templates())  # type: ignore[arg-type]

    class Sub:
        tracking_no = "FK-ABCD-EFGH"

    for kind in notice_mod.SMS_STEPS:
        text = notice_mod.sms_text(ctx, Sub(), kind)  # type: ignore[arg-type]
        assert "FK-ABCD-EFGH" in text and len(text) <= notice_mod.SMS_MAX
    assert notice_mod.mobile_number("+86 138-1234-5678") == "13812345678"
    assert notice_mod.mobile_number("0513-85098289") is None

