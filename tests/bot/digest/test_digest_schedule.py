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
from storage import digests
from storage.models import Digest, Outbox
from tests.bot.helpers import wait_mail
from tests.conftest import make_settings
from tests.servers import SmtpSink

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


async def test_sent_once_across_a_restart(db_url: str, tmp_path: Path, smtp_sink: SmtpSink):
    settings = digest_settings(db_url, tmp_path, smtp_sink)
    week = last_due_week()
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


def test_no_recipients_no_task(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
    assert task_for(make_settings(url, tmp_path)) is None
    assert task_for(make_settings(url, tmp_path, digest={"recipients": ["a@b.cn"]})) is not None
