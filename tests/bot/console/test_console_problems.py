"""What the intake could not file and what the outbox could not send, in the console: listed
with their reasons, acted on (CSRF-checked, audited), and never a 举报's text to a reviewer.

A running service, aiosmtpd, SQLite and PostgreSQL; letters quarantined the way the intake
worker records it (``storage.raw_intake.mark_failed``, max_attempts times)."""

from __future__ import annotations

import re

import aiohttp
from playwright.async_api import Page
from sqlalchemy import select

from bot.app import Service
from handlers import tracking
from storage import digests, outbox, raw_intake
from storage.models import Event, Outbox, RawIntake, Submission
from testing.smtp import SmtpSink
from tests.bot.console.support import (
    PASSWORD,
    Staff,
    file_letter,
    login,
    page_csrf,
    post_form,
)
from tests.bot.helpers import form_token, wait_mail
from tests.bot.sources.mailtools import until

SECRET_TEXT = "实名举报副所长刘德胜受贿，我是举报人陈小红，电话13912345678"
ERROR = ("Traceback (most recent call last):\n  File \"handlers/mail/compose.py\", line 1\n"
         f"UnicodeEncodeError: 'ascii' codec can't encode '{SECRET_TEXT}'")


async def _quarantine(service: Service, n: int, email: str) -> tuple[int, str]:
    """A form letter stored with its tracking number and quarantined after failing."""
    rt = service.runtime
    tn = tracking.new_tracking_no(rt.settings.intake.tracking_prefix)
    fields = {"name": "陈小红", "email": email, "phone": "", "subject": "举报",
              "body": f"{SECRET_TEXT}（{n}）"}
    async with rt.sessions.begin() as db:
        raw_id = await raw_intake.add(db, channel="web", source_key=f"test:q{n}",
                                      payload={"fields": fields}, tracking_no=tn)
        assert raw_id is not None
        for _ in range(rt.settings.intake.max_attempts):
            await raw_intake.mark_failed(db, raw_id, ERROR, rt.settings.intake.max_attempts)
    return raw_id, tn


async def _raw(service: Service, raw_id: int) -> RawIntake:
    async with service.runtime.sessions() as db:
        row = await raw_intake.get(db, raw_id)
    assert row is not None
    return row


async def _events(service: Service, action: str) -> list[Event]:
    async with service.runtime.sessions() as db:
        return list(await db.scalars(select(Event).where(Event.action == action)))


async def _health(http: aiohttp.ClientSession, base: str) -> dict:
    async with http.get(f"{base}/healthz") as resp:
        return await resp.json()


async def test_quarantined_letters_are_listed_retried_and_filed_without_ack(
        service: Service, reviewer: Staff, supervisor: Staff, client: aiohttp.ClientSession,
        smtp_sink: SmtpSink):
    base = service.base_url
    retry_id, retry_tn = await _quarantine(service, 1, "chen@example.com")
    file_id, file_tn = await _quarantine(service, 2, "chen2@example.com")
    async with aiohttp.ClientSession() as http:
        health = await _health(http, base)
        assert health["status"] == "degraded" and health["problems"]["intake_quarantined"] == 2
        # the writer looks the letter up: not "number or code wrong"
        token = await form_token(http, base)
        code = tracking.query_code_for(service.runtime.secret, retry_tn)
        async with http.post(f"{base}/status", data={"token": token, "tracking_no": retry_tn,
                                                     "query_code": code}) as resp:
            page = await resp.text()
        assert resp.status == 200 and "工作人员人工处理" in page and "不正确" not in page

    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console/intake") as resp:
        html = await resp.text()
    assert resp.status == 200
    assert f'id="raw-{retry_id}"' in html and retry_tn in html and "UnicodeEncodeError" in html
    assert "陈小红" not in html and "13912345678" not in html  # a reviewer: metadata only
    # actions need the CSRF token
    status, _, _ = await post_form(client, f"{base}/console/intake/{retry_id}/retry", {})
    assert status == 403 and (await _raw(service, retry_id)).state == "quarantined"
    csrf = await page_csrf(client, f"{base}/console/intake")
    status, _, where = await post_form(client, f"{base}/console/intake/{retry_id}/retry",
                                       {"csrf": csrf})
    assert status == 303 and where.endswith("/console/intake")
    status, _, _ = await post_form(client, f"{base}/console/intake/{file_id}/file",
                                   {"csrf": csrf})
    assert status == 303

    async def both_done() -> bool:
        rows = [await _raw(service, i) for i in (retry_id, file_id)]
        return all(r.state == "done" for r in rows)
    await until(both_done, what="both letters filed", timeout=20)
    [ack] = await wait_mail(smtp_sink, 1)
    assert ack.rcpt_tos == ["chen@example.com"] and retry_tn in str(ack.message["Subject"])
    async with service.runtime.sessions() as db:
        subs = {s.tracking_no: s for s in await db.scalars(select(Submission))}
        acks = list(await db.scalars(select(Outbox).where(Outbox.purpose == "ack")))
    assert set(subs) == {retry_tn, file_tn}  # filed under the numbers the writers were shown
    assert [a.submission_id for a in acks] == [subs[retry_tn].id]  # no ack for the other
    [retried] = await _events(service, "intake-retry")
    [no_ack] = await _events(service, "intake-file-no-ack")
    assert retried.actor == no_ack.actor == reviewer.name
    assert retried.detail["raw"] == retry_id and no_ack.detail["raw"] == file_id
    # a supervisor may read the error's full text
    await _quarantine(service, 3, "chen3@example.com")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as sup:
        await login(sup, base, supervisor.name)
        async with sup.get(f"{base}/console/intake") as resp:
            assert SECRET_TEXT in await resp.text()


async def test_failed_mail_is_listed_masked_for_reviewers_and_resent(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession, smtp_sink: SmtpSink):
    base = service.base_url
    smtp_sink.reject_rcpt("whistle@example.com", code=550,
                          text="5.1.1 <whistle@example.com>: Recipient address rejected")
    smtp_sink.reject_rcpt("lamp@example.com", code=550, text="5.1.1 User unknown")
    report = await file_letter(service, SECRET_TEXT, email="whistle@example.com", kind="report")
    plain = await file_letter(service, "路灯坏了很久了，请尽快修理。", email="lamp@example.com")

    async def failed() -> list[Outbox]:
        async with service.runtime.sessions() as db:
            rows = list(await db.scalars(select(Outbox).where(Outbox.state == "failed")))
        return rows if len(rows) == 2 else []
    rows = {r.submission_id: r for r in await until(failed, what="two failures", timeout=20)}
    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console/outbox") as resp:
        html = await resp.text()
    assert resp.status == 200
    assert "whistle@example.com" not in html and "w***@example.com" in html
    assert "lamp@example.com" in html and "User unknown" in html
    assert "刘德胜" not in html and "发送失败" in html
    # resend: pending again, the letter's "not sent" note taken back, audited
    smtp_sink.clear()
    csrf = await page_csrf(client, f"{base}/console/outbox")
    row = rows[plain]
    status, _, _ = await post_form(client, f"{base}/console/outbox/{row.id}/resend",
                                   {"csrf": csrf})
    assert status == 303
    [again] = await wait_mail(smtp_sink, 1)
    assert again.rcpt_tos == ["lamp@example.com"]
    [resent] = await _events(service, "mail-resend")
    assert resent.submission_id == plain and resent.actor == reviewer.name
    # dismiss the other: healthz no longer degraded by it
    status, _, _ = await post_form(client, f"{base}/console/outbox/{rows[report].id}/dismiss",
                                   {"csrf": csrf})
    assert status == 303

    async def healthy() -> bool:
        async with aiohttp.ClientSession() as http:
            return (await _health(http, base))["problems"]["mail_failed"] == 0
    await until(healthy, what="no failed mail left")
    async with service.runtime.sessions() as db:
        sub = await db.get(Submission, plain)
    assert not (sub.flags or {}).get("ack_failed")


async def test_digest_page_says_what_became_of_each_digest(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession, smtp_sink: SmtpSink):
    """Not "已进入发信队列" for a digest whose mail failed."""
    smtp_sink.reject_rcpt("leader@example.gov.cn", code=550, text="5.1.1 Mailbox unavailable")
    rt = service.runtime
    async with rt.sessions.begin() as db:
        for week, rcpt in (("2026-W47", "leader@example.gov.cn"), ("2026-W48", "ok@example.gov.cn")):
            mid = f"digest.{week}.0.abcdef012345@zfw.example.gov.cn"
            msg = digests.Message(recipient=rcpt, sender="feedback@zfw.example.gov.cn",
                                  message_id=mid,
                                  data=f"Message-ID: <{mid}>\r\nSubject: {week}\r\n\r\nok\r\n"
                                  .encode())
            await digests.record_run(db, week, {"total": 3}, "<html></html>", [msg])
    rt.outbox_wakeup.set()

    async def settled() -> bool:
        async with rt.sessions() as db:
            states = set(await outbox.counts_by_state(db))
        return states <= {"sent", "failed"}
    await until(settled, what="both digests settled", timeout=20)
    await login(client, service.base_url, reviewer.name)
    async with client.get(f"{service.base_url}/console/digests") as resp:
        html = await resp.text()
    cells = dict(re.findall(r'>(2026-W\d\d)</a></td>.*?<td class="mail-status">([^<]*)</td>',
                            html, re.S))
    assert cells["2026-W47"].startswith("发送失败") and "Mailbox unavailable" in cells["2026-W47"]
    assert cells["2026-W48"].startswith("已发送")
    assert "已进入发信队列" not in html


async def test_staff_handle_problems_in_chromium(service: Service, page: Page, reviewer: Staff,
                                                 smtp_sink: SmtpSink):
    """In a browser: the nav leads to both pages, a quarantined letter is retried with a click
    and acknowledged, a failed message is resent with a click."""
    base = service.base_url
    raw_id, tn = await _quarantine(service, 9, "zhou@example.com")
    smtp_sink.reject_rcpt("wu@example.com", code=550, text="5.1.1 User unknown")
    await file_letter(service, "小区垃圾站每天都有异味，夏天尤其严重，请环卫部门处理。",
                      email="wu@example.com")
    await page.goto(f"{base}/console")
    await page.get_by_label("用户名").fill(reviewer.name)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.get_by_role("link", name="未能登记").click()
    row = page.locator(f"#raw-{raw_id}")
    assert tn in (await row.inner_text())
    await row.get_by_role("button", name="重新处理").click()
    assert "已放回待处理队列" in (await page.locator("#flash").text_content() or "")
    [ack] = await wait_mail(smtp_sink, 1, timeout=15)
    assert ack.rcpt_tos == ["zhou@example.com"]

    async def failed() -> bool:
        async with service.runtime.sessions() as db:
            return bool((await outbox.counts_by_state(db)).get("failed"))
    await until(failed, what="the failed acknowledgement", timeout=15)
    smtp_sink.clear()
    await page.get_by_role("link", name="发信队列").click()
    failed_row = page.locator("tr.mail-failed")
    assert "User unknown" in await failed_row.inner_text()
    await failed_row.get_by_role("button", name="重新发送").click()
    assert "重新放入发送队列" in (await page.locator("#flash").text_content() or "")
    [again] = await wait_mail(smtp_sink, 1, timeout=15)
    assert again.rcpt_tos == ["wu@example.com"]
