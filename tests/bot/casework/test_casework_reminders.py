"""The morning reminders against the real servers (SQLite and PostgreSQL, aiosmtpd), with the
service's clock moved (storage.clock.travel), never a sleep: each assignee and supervisor gets
one mail of their cases due soon and overdue, a 举报 named by number, category and deadline
only; the forwarding unit is reminded at its address; and nothing goes out in the quiet hours."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import Service, start
from storage import clock, submissions, users
from storage.models import Outbox, ReminderRun
from testing.smtp import SmtpSink
from tests.bot.casework.support import text_of
from tests.bot.helpers import wait_mail
from tests.conftest import make_settings

TZ = ZoneInfo("Asia/Shanghai")
EVENING = datetime(2026, 3, 10, 21, 0, tzinfo=TZ)  # after the 08:30 run, in the quiet hours
MORNING = datetime(2026, 3, 11, 8, 0, 30, tzinfo=TZ)  # the quiet hours have just ended
UNIT_ADDR = "xfk@gaj.example.gov.cn"


@pytest.fixture
def travel() -> Iterator[None]:
    yield
    clock.travel(None)


async def _seed(service: Service) -> dict[str, object]:
    """Staff with addresses and cases: one overdue, one due soon, one 举报 due soon assigned
    to the reviewer, one not due, one forwarded with the unit's due date in two days."""
    now = clock.utcnow()
    async with service.runtime.sessions.begin() as db:
        rev = await users.add(db, "reviewer1", "reviewer", "correct horse battery staple")
        sup = await users.add(db, "supervisor1", "supervisor", "correct horse battery staple")
        await users.add(db, "nomail", "reviewer", "correct horse battery staple")
        await users.set_email(db, "reviewer1", "rev@example.gov.cn")
        await users.set_email(db, "supervisor1", "sup@example.gov.cn")

        async def case(n: int, days_ago: int, **extra: object) -> str:
            fields: dict[str, object] = {
                "tracking_no": f"FK-TEST-000{n}", "channel": "web", "text": "正文",
                "subject": f"标题{n}号路灯不亮", "category": "other", "status": "new",
                "received_at": now - timedelta(days=days_ago), **extra}
            sub = await submissions.add(db, **fields)
            return sub.tracking_no

        late = await case(1, 20, assignee_id=rev.id)
        soon = await case(2, 13, assignee_id=rev.id)
        secret = await case(3, 14, assignee_id=rev.id, restricted=True, restricted_by="staff",
                            subject="举报某某所长受贿")
        later = await case(4, 1, assignee_id=rev.id)
        unit = await case(5, 5, status="forwarded", accepted_at=now - timedelta(days=3),
                          forwarded_to="公安局", forward_due=(now + timedelta(days=2)).date())
    return {"late": late, "soon": soon, "secret": secret, "later": later, "unit": unit,
            "rev": rev.id, "sup": sup.id}


async def _rows(service: Service, n: int) -> list[Outbox]:
    """The reminder rows once ``n`` exist and the outbox has looked at each (deferred)."""
    async with asyncio.timeout(20):
        while True:
            async with service.runtime.sessions() as db:
                rows = list(await db.scalars(select(Outbox).where(
                    Outbox.purpose.in_(("remind", "unitremind"))).order_by(Outbox.id)))
            if len(rows) >= n and all(r.next_attempt_at > clock.utcnow() for r in rows):
                return rows
            await asyncio.sleep(0.05)


async def test_morning_reminders_wait_for_office_hours_and_hide_reports(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink, travel: None) -> None:
    settings = make_settings(db_url, tmp_path, smtp_sink, casework={
        "units": ["法院", {"name": "公安局", "email": UNIT_ADDR}], "remind_at": "08:30",
        "quiet_hours": "20:00-08:00"})
    clock.travel(EVENING - timedelta(hours=14))  # 07:00: before the day's run, quiet
    setup = await start(settings, workers=False)
    try:
        cases = await _seed(setup)
    finally:
        await setup.stop()
    clock.travel(EVENING)
    service = await start(settings)
    try:
        rows = await _rows(service, 3)  # reviewer, supervisor, the unit
        assert {r.recipient for r in rows} == {"rev@example.gov.cn", "sup@example.gov.cn",
                                               UNIT_ADDR}
        # held until the quiet hours end, without an attempt counted; nothing was sent
        assert {r.next_attempt_at for r in rows} == {MORNING.replace(second=0)}
        assert all(r.state == "pending" and r.attempts == 0 for r in rows)
        assert smtp_sink.messages == []
        async with service.runtime.sessions() as db:
            runs = list(await db.scalars(select(ReminderRun)))
        assert {r.user_id for r in runs} == {cases["rev"], cases["sup"]}  # one a day each

        clock.travel(MORNING)
        service.runtime.outbox_wakeup.set()
        mails = {m.rcpt_tos[0]: m for m in await wait_mail(smtp_sink, 3, timeout=20)}
        rev = text_of(mails["rev@example.gov.cn"])
        assert cases["late"] in rev and cases["soon"] in rev and cases["secret"] in rev
        assert cases["later"] not in rev and cases["unit"] not in rev  # not due; not theirs
        assert "已超期" in rev and "即将到期" in rev
        assert "举报某某所长受贿" not in mails["rev@example.gov.cn"].content.decode("utf-8",
                                                                                 "replace")
        sup = text_of(mails["sup@example.gov.cn"])
        assert cases["late"] in sup and cases["secret"] in sup
        assert "举报某某所长受贿" not in sup  # no subject of a 举报 in any mail
        unit = text_of(mails[UNIT_ADDR])
        assert cases["unit"] in unit and "公安局" in unit
        # a restart the same day sends nothing twice
        await service.stop()
        service = await start(settings)
        async with asyncio.timeout(20):  # the reminder worker's first round is done
            while service.runtime.worker("reminders").last_success is None:
                await asyncio.sleep(0.05)
        async with service.runtime.sessions() as db:
            again = await db.scalar(select(Outbox.id).where(Outbox.id > rows[-1].id))
        assert again is None
    finally:
        await service.stop()
