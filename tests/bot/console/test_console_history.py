"""What staff read about a letter's course: status changes and ratings in the audit log, and
the handling time limit counted from acceptance."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiohttp

from bot.app import Service
from storage import events
from storage import review_list as queue
from storage import status as citizen_status
from storage.db import utcnow
from tests.bot.console.support import Staff, file_letter, login, page_csrf, post_form


async def _set_status(client: aiohttp.ClientSession, base: str, sid: int, current: str,
                      target: str, **extra: str) -> None:
    csrf = await page_csrf(client, f"{base}/console/s/{sid}")
    status, _body, location = await post_form(
        client, f"{base}/console/s/{sid}/status",
        {"csrf": csrf, "current": current, "to": target, **extra})
    assert status == 302 and location == f"/console/s/{sid}"


async def _text(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_status_change_is_logged_with_the_previous_status(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    sid = await file_letter(service, "小区的路灯坏了一个多月，晚上出行很不方便。")
    await login(client, base, supervisor.name)
    await _set_status(client, base, sid, "new", "accepted")
    await _set_status(client, base, sid, "accepted", "in_progress")
    async with service.runtime.sessions() as db:
        changes = [e.detail for e in await events.for_submission(db, sid) if e.action == "status"]
    assert [(d["from"], d["to"]) for d in changes] == [("new", "accepted"),
                                                      ("accepted", "in_progress")]
    page = await _text(client, f"{base}/console/audit?action=status")
    assert "原为：待受理；改为：已受理" in page and "原为：已受理；改为：办理中" in page


async def test_rating_reads_in_words_in_the_audit_log(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    sid = await file_letter(service, "反映的噪音问题已经处理，但是过程太慢。")
    async with service.runtime.sessions.begin() as db:
        sub = await queue.get(db, sid)
        assert sub is not None
        await citizen_status.rate(db, sub, "不满意", "处理太慢了")
    await login(client, base, supervisor.name)
    page = await _text(client, f"{base}/console/audit")
    assert "评价：不满意；评价意见：有" in page
    assert "True" not in page and "comment" not in page


async def test_handling_limit_counts_from_acceptance_not_receipt(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    days = service.runtime.settings.intake
    tz = ZoneInfo(service.runtime.settings.digest.timezone)
    sid = await file_letter(service, "村里的垃圾站一直没人清运，气味很大。")
    received = utcnow() - timedelta(days=days.handle_days + 5)  # received long ago ...
    async with service.runtime.sessions.begin() as db:
        await queue.update_fields(db, sid, received_at=received)
    await login(client, base, supervisor.name)
    await _set_status(client, base, sid, "new", "accepted")  # ... accepted today
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
    assert sub is not None and sub.accepted_at is not None
    handle_by = (sub.accepted_at + timedelta(days=days.handle_days)).astimezone(tz)
    page = await _text(client, f"{base}/console/s/{sid}")
    limit = re.search(r"<dt>办结期限</dt><dd[^>]*>([^<]*)</dd>", page)
    assert limit is not None and limit.group(1) == handle_by.strftime("%Y-%m-%d")
    # not overdue: the 60 days run from today's acceptance
    overdue = await _text(client, f"{base}/console?overdue=1")
    assert sub.tracking_no not in overdue
    # a case accepted more than handle_days ago and still open is overdue
    async with service.runtime.sessions.begin() as db:
        await queue.update_fields(
            db, sid, accepted_at=utcnow() - timedelta(days=days.handle_days + 1))
    assert sub.tracking_no in await _text(client, f"{base}/console?overdue=1")
