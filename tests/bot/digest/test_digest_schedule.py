"""The digest schedule against a real SMTP server: exactly one digest per week and recipient.

The services run with the default schedule (Monday 08:00, Asia/Shanghai), so the last scheduled
run is always in the past when a test starts: a service that was not running then must catch up
at start, once — across a restart on the same database and with two services running at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.app import Service, background_tasks, start
from bot.config import Settings
from bot.workers.digest import task_for
from handlers.digest import Week
from storage import digests, submissions
from storage.db import make_engine, sessionmaker
from storage.models import Digest, Event, Outbox
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.conftest import make_settings

TZ = ZoneInfo("Asia/Shanghai")
RECIPIENTS = ["书记 <leader@example.gov.cn>", "office@example.gov.cn"]


def last_due_week() -> Week:
    """The week the last Monday-08:00 run covered (computed by hand, not by the code under test)."""
    now = datetime.now(TZ)
    run = (now - timedelta(days=now.weekday())).replace(hour=8, minute=0, second=0,
                                                        microsecond=0)
    if run > now:
        run -= timedelta(days=7)
    return Week.of(run.date() - timedelta(days=7))


def digest_settings(db_url: str, tmp_path: Path, sink: SmtpSink) -> Settings:
    return make_settings(db_url, tmp_path, sink, digest={"recipients": RECIPIENTS})


def week_title(week: Week) -> str:
    return f"{week.year}年第{week.number}周"


def check_digest_mail(msg: EmailMessage, week: Week) -> None:
    assert week_title(week) in str(msg["Subject"])
    types = [p.get_content_type() for p in msg.walk()]
    assert "image/png" in types and "text/plain" in types and "text/html" in types
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == f"feedback-{week}.xlsx"


async def settle(*services: Service, timeout: float = 30) -> None:
    """Wait until every digest outbox row is sent and the senders are idle again.

    Stopping a service while its outbox worker is inside a database call can leave that worker
    unable to stop (reported to the lead); these tests stop services only when they are idle.
    """
    for _ in range(int(timeout * 10)):
        async with services[0].runtime.sessions() as s:
            states = set(await s.scalars(select(Outbox.state).where(Outbox.purpose == "digest")))
        if states == {"sent"}:
            await asyncio.sleep(0.5)
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"digest outbox rows never all sent: {states}")


async def digest_rows(service: Service) -> tuple[int, int]:
    async with service.runtime.sessions() as s:
        n_digests = await s.scalar(select(func.count()).select_from(Digest))
        n_outbox = await s.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.purpose == "digest"))
    return int(n_digests or 0), int(n_outbox or 0)


async def letter_in(db_url: str, week: Week) -> None:
    """A letter received in ``week``: the service was taking in mail then, so the week is due."""
    engine = make_engine(db_url)
    try:
        async with sessionmaker(engine).begin() as s:
            await submissions.add(s, tracking_no="FK-TEST-0001", channel="web", category="1",
                                  text="小区门口路灯坏了很久。",
                                  received_at=week.start(TZ) + timedelta(days=2))
    finally:
        await engine.dispose()


async def test_sent_once_across_a_restart(db_url: str, tmp_path: Path, smtp_sink: SmtpSink):
    settings = digest_settings(db_url, tmp_path, smtp_sink)
    week = last_due_week()
    await letter_in(db_url, week)
    first = await start(settings)
    try:
        got = await wait_mail(smtp_sink, 2, timeout=60)
        await settle(first)
    finally:
        await first.stop()
    assert sorted(r for m in got for r in m.rcpt_tos) == ["leader@example.gov.cn",
                                                          "office@example.gov.cn"]
    for m in got:
        check_digest_mail(m.message, week)

    second = await start(settings)
    try:
        await asyncio.sleep(3)  # the new service's digest worker has checked and found it sent
        assert second.runtime.workers["digest"].state == "running"
        assert await digest_rows(second) == (1, 2)
    finally:
        await second.stop()
    assert len(smtp_sink.messages) == 2


async def test_two_services_at_once_send_it_once(db_url: str, tmp_path: Path,
                                                 smtp_sink: SmtpSink):
    settings = digest_settings(db_url, tmp_path, smtp_sink)
    await letter_in(db_url, last_due_week())
    # Started one after the other (schema upgrades do not run in parallel), their workers are
    # then launched together, so both digest workers race for the same week.
    services = [await start(settings, workers=False), await start(settings, workers=False)]
    for svc in services:
        svc.tasks = [asyncio.create_task(fn(svc.runtime), name=name)
                     for name, fn in background_tasks(settings).items()]
    try:
        await wait_mail(smtp_sink, 2, timeout=60)
        await settle(*services)
        await asyncio.sleep(2)
        for svc in services:
            assert svc.runtime.workers["digest"].state == "running"
        assert await digest_rows(services[0]) == (1, 2)
    finally:
        await asyncio.gather(*(svc.stop() for svc in services))
    assert len(smtp_sink.messages) == 2
    assert {week_title(last_due_week()) in str(m.message["Subject"])
            for m in smtp_sink.messages} == {True}


async def test_missed_weeks_are_caught_up_once_each(db_url: str, tmp_path: Path,
                                                   smtp_sink: SmtpSink):
    settings = digest_settings(db_url, tmp_path, smtp_sink)
    due = last_due_week()
    # The service last sent a digest three weeks before the due one, then was down.
    svc = await start(settings, workers=False)
    async with svc.runtime.sessions.begin() as s:
        await digests.record_run(s, str(due.shift(-3)), {}, "", [])
    await svc.stop()

    svc = await start(settings)
    try:
        got = await wait_mail(smtp_sink, 6, timeout=90)
        await settle(svc)
        assert await digest_rows(svc) == (4, 6)
    finally:
        await svc.stop()
    assert len(smtp_sink.messages) == len(got) == 6
    for week in (due.shift(-2), due.shift(-1), due):
        mine = [m for m in got if week_title(week) in str(m.message["Subject"])]
        assert sorted(r for m in mine for r in m.rcpt_tos) == ["leader@example.gov.cn",
                                                               "office@example.gov.cn"]
    assert not [m for m in got if week_title(due.shift(-3)) in str(m.message["Subject"])]


async def test_a_new_service_sends_no_digest_of_a_week_before_it(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink):
    settings = digest_settings(db_url, tmp_path, smtp_sink)
    svc = await start(settings)
    try:
        state = svc.runtime.worker("digest")
        for _ in range(300):  # until the worker has looked for due weeks once
            if state.last_success is not None:
                break
            await asyncio.sleep(0.1)
        assert state.state == "running", state.last_error
        assert await digest_rows(svc) == (0, 0)
        async with svc.runtime.sessions() as s:
            [start_event] = list(await s.scalars(select(Event).where(
                Event.action == digests.STARTED)))
        assert start_event.submission_id is None and start_event.actor == "system"
    finally:
        await svc.stop()
    assert smtp_sink.messages == []
    # The week it first ran in is its first digest: once that week is over, it is due.
    assert start_event.at > last_due_week().end(TZ)


def test_no_recipients_no_task(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
    assert task_for(make_settings(url, tmp_path)) is None
    assert task_for(make_settings(url, tmp_path, digest={"recipients": ["a@b.cn"]})) is not None
