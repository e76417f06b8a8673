"""Urgent letters through the running service (SQLite and PostgreSQL, aiosmtpd): the alert goes
out first and past the sending cap; a reviewer raises the alarm and takes it ("我来处理"), only a
supervisor lifts it; the queue pins it with a 紧急 badge; a reviewer sees that a 举报 is urgent,
not why; and a letter nobody took alerts the supervisors once its time is up (clock moved with
storage.clock.travel, never a sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import Service, start
from bot.workers.urgent import escalate_due
from storage import clock, users
from storage.models import Event, Outbox, Submission
from testing.smtp import SmtpSink
from tests.bot.casework.support import text_of
from tests.bot.console.support import add_user, file_letter, login, page_csrf, post_form
from tests.bot.helpers import submit, tracking_no, wait_mail
from tests.conftest import make_settings

DUTY = ["duty@example.gov.cn"]
CAP = 2  # smtp.max_per_day: the third acknowledgement waits, an alert does not


@pytest.fixture
def travel() -> Iterator[None]:
    yield
    clock.travel(None)


@pytest.fixture
async def capped(db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> AsyncIterator[Service]:
    settings = make_settings(db_url, tmp_path, smtp_sink, urgent={"duty": DUTY})
    settings.smtp.max_per_day = CAP
    svc = await start(settings)
    try:
        yield svc
    finally:
        await svc.stop()


@asynccontextmanager
async def _signed_in(service: Service, *roles: str) -> AsyncIterator[list[aiohttp.ClientSession]]:
    """A console session for a new account of each role (``reviewer`` → reviewer1), signed in."""
    async with AsyncExitStack() as stack:
        sessions = []
        for role in roles:
            await add_user(service, f"{role}1", role)
            http = await stack.enter_async_context(
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))
            await login(http, service.base_url, f"{role}1")
            sessions.append(http)
        yield sessions


async def _sub(service: Service, sid: int) -> Submission:
    async with service.runtime.sessions() as db:
        sub = await db.get(Submission, sid)
    assert sub is not None
    return sub


async def _act(http: aiohttp.ClientSession, base: str, sid: int, action: str,
               **data: str) -> int:
    token = await page_csrf(http, f"{base}/console/s/{sid}")
    status, _body, _loc = await post_form(http, f"{base}/console/s/{sid}/{action}",
                                          {"csrf": token, **data})
    return status


async def test_alert_goes_first_past_the_cap_and_staff_take_and_lift_it(
        capped: Service, smtp_sink: SmtpSink) -> None:
    base = capped.base_url
    letters = [await file_letter(capped, f"第{n}封来信：小区路灯坏了很久", email=f"c{n}@qq.com")
               for n in range(3)]
    await wait_mail(smtp_sink, CAP)  # two acknowledgements; the third waits for tomorrow
    async with _signed_in(capped, "reviewer", "supervisor") as (rev, sup):
        target = letters[2]
        assert await _act(rev, base, target, "urgent", urgent="1", reason="violence") == 302
        alert = (await wait_mail(smtp_sink, CAP + 1, timeout=20))[CAP]
        sub = await _sub(capped, target)
        assert alert.rcpt_tos == DUTY and sub.tracking_no in str(alert.message["Subject"])
        body = text_of(alert)
        assert "暴力威胁" in body and f"/console/s/{target}" in body
        assert "c2@qq.com" not in body and "路灯" not in body
        async with capped.runtime.sessions() as db:  # the capped acknowledgement still waits
            held = list(await db.scalars(select(Outbox).where(
                Outbox.purpose == "ack", Outbox.state == "pending")))
        assert [r.submission_id for r in held] == [target]

        async with rev.get(f"{base}/console") as resp:  # pinned, with the badge
            queue = await resp.text()
        pinned = queue[queue.index('id="urgent-pinned"'):queue.index('id="submissions"')]
        assert sub.tracking_no in pinned and 'aria-label="紧急来信"' in pinned
        assert "我来处理" in pinned
        async with rev.get(f"{base}/console?urgent=1") as resp:
            only = await resp.text()
        listed = only[only.index('id="submissions"'):]
        # Rows, not the repeat links under a row (these test letters are alike, so linked).
        assert f'data-tracking="{sub.tracking_no}"' in listed
        for other in letters[:2]:
            assert f'data-tracking="{(await _sub(capped, other)).tracking_no}"' not in listed

        # A reviewer raises the alarm but may not lower it.
        assert await _act(rev, base, target, "urgent", urgent="0", reason="误报") == 403
        assert (await _sub(capped, target)).urgent
        assert await _act(rev, base, target, "take") == 302
        async with rev.get(f"{base}/console/s/{target}") as resp:
            page = await resp.text()
        assert 'id="urgent-taken"' in page and "reviewer1" in page and "暴力威胁" in page
        assert await _act(sup, base, target, "urgent", urgent="0", reason="核实为误报") == 302
        sub = await _sub(capped, target)
        assert not sub.urgent and sub.urgent_taken_by == "reviewer1"
    async with capped.runtime.sessions() as db:
        actions = [(e.actor, e.action) for e in await db.scalars(
            select(Event).where(Event.submission_id == target).order_by(Event.id))]
    assert ("reviewer1", "urgent") in actions and ("reviewer1", "urgent-taken") in actions
    assert ("supervisor1", "not-urgent") in actions


async def test_a_reviewer_sees_that_a_report_is_urgent_not_why(
        capped: Service, smtp_sink: SmtpSink) -> None:
    base = capped.base_url
    sid = await file_letter(capped, "举报某局长收受贿赂，他威胁要打死我", kind="report")
    async with _signed_in(capped, "reviewer", "supervisor") as (rev, sup):
        assert await _act(sup, base, sid, "urgent", urgent="1", reason="violence") == 302
        mails = await wait_mail(smtp_sink, 1, timeout=20)
        alert = next(m for m in mails if m.rcpt_tos == DUTY)
        assert "举报件" in text_of(alert) and "暴力威胁" not in text_of(alert)
        async with rev.get(f"{base}/console/s/{sid}") as resp:
            page = await resp.text()
        assert 'id="urgent-tag"' in page and "暴力威胁" not in page and "我来处理" not in page
        async with rev.get(f"{base}/console") as resp:
            queue = await resp.text()
        assert 'aria-label="紧急来信"' in queue and "贿赂" not in queue
        async with rev.post(f"{base}/console/s/{sid}/take", allow_redirects=False,
                            data={"csrf": await page_csrf(rev, f"{base}/console")}) as resp:
            assert resp.status == 403
        async with sup.get(f"{base}/console/s/{sid}") as resp:
            assert "暴力威胁" in await resp.text()


async def test_nobody_took_it_so_the_supervisors_are_alerted_once(
        capped: Service, smtp_sink: SmtpSink, travel: None) -> None:
    base = capped.base_url
    late = await file_letter(capped, "邻居在打孩子，孩子一直在哭喊救命", email="a@qq.com")
    taken = await file_letter(capped, "有人在河边要跳河，我拉不住", email="b@qq.com")
    async with _signed_in(capped, "supervisor") as [sup]:
        async with capped.runtime.sessions.begin() as db:
            await users.set_email(db, "supervisor1", "sup@example.gov.cn")
        for sid in (late, taken):
            assert await _act(sup, base, sid, "urgent", urgent="1", reason="danger") == 302
        assert await _act(sup, base, taken, "take") == 302
    assert await escalate_due(capped.runtime) == 0  # not yet: 30 minutes by default
    clock.travel(clock.utcnow() + timedelta(minutes=31))
    assert await escalate_due(capped.runtime) + await escalate_due(capped.runtime) <= 1
    async with asyncio.timeout(20):
        while True:
            mails = await wait_mail(smtp_sink, 1, timeout=20)
            sup_mail = [m for m in mails if m.rcpt_tos == ["sup@example.gov.cn"]]
            if sup_mail:
                break
            await asyncio.sleep(0.05)
    assert len(sup_mail) == 1
    sub = await _sub(capped, late)
    assert sub.tracking_no in text_of(sup_mail[0]) and "无人" in str(sup_mail[0].message["Subject"])
    assert sub.urgent_escalated_at is not None
    assert (await _sub(capped, taken)).urgent_escalated_at is None
    assert await escalate_due(capped.runtime) == 0


async def test_an_urgent_web_letter_alerts_the_duty_list_with_no_personal_data(
        capped: Service, smtp_sink: SmtpSink) -> None:
    async with aiohttp.ClientSession() as http:
        status, page = await submit(http, capped.base_url, name="", email="jump@qq.com",
                                    phone="", subject="求助",
                                    body="我今晚就去市政府门口跳楼，执行款三年不给，我不想活了。")
    assert status == 200
    # Both go out; which reaches the sink first is not ours to say when one batch sends them
    # in parallel (the alert's place ahead of capped mail is the test above).
    mails = await wait_mail(smtp_sink, 2, timeout=30)
    alert = next(m for m in mails if m.rcpt_tos == DUTY)
    assert any(m.rcpt_tos == ["jump@qq.com"] for m in mails)
    assert tracking_no(page) in text_of(alert) and "跳楼" not in text_of(alert)
