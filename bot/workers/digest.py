"""The weekly digest schedule: send each week's digest exactly once, catching up after downtime.

``[digest] schedule`` is a cron expression in ``[digest] timezone`` (croniter). A run at time T
covers the last complete ISO week before T. The worker does not keep state in memory: on every
wake-up it asks which weeks are due (walking back over the schedule's past run times to the last
week recorded in ``digests``) and sends the missing ones, oldest first. Each is recorded by
``storage.digests.record_run`` — the ``digests`` row with its unique week and one outbox row per
recipient in one transaction — so a restart, a second instance or a service that was down at the
scheduled time can neither send a week twice nor skip it (Zulip's digest habit).

A database with no digest recorded yet sends only the most recent due week, not a backlog, and
no week that ended before the schedule first ran (or before the first letter, if that is older):
a new service does not open with the empty digest of a week before it existed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.config import Settings
from bot.runtime import Runtime
from bot.workers import runner
from bot.workers.runner import Next, Worker
from handlers.digest import Options, Week, build, week_before, week_of
from storage import digests
from storage.db import utcnow

log = logging.getLogger(__name__)
MAX_CATCH_UP = 8  # weeks; a longer outage sends the last 8 missed digests, not years of them


def options(settings: Settings) -> Options:
    return Options(timezone=settings.digest.timezone, accept_days=settings.intake.accept_days,
                   handle_days=settings.intake.handle_days, public_url=settings.web.public_url,
                   repeats_threshold=settings.repeats.threshold,
                   repeats_ngram=settings.repeats.ngram)


def due_weeks(schedule: str, tz: ZoneInfo, now: datetime, recorded: set[str],
              first_run: bool, since: datetime | None = None) -> list[Week]:
    """Weeks whose scheduled run is past and that are not recorded yet, oldest first.

    Walks the schedule backwards, one run per week (all runs inside one ISO week cover the same
    previous week, so after each run the walk jumps to the start of that run's week), and stops
    at the first week already recorded (a week sent by hand with ``feedback-bot digest --send``
    does not hide the weeks after it) or at the first week that ended at or before ``since``
    (the start of the digest's record, :func:`storage.digests.since`).
    """
    found: list[Week] = []
    cursor = now.astimezone(tz)
    limit = 1 if first_run else MAX_CATCH_UP
    while len(found) < limit:
        fire = croniter(schedule, cursor).get_prev(datetime)
        week = week_before(fire, tz)
        if str(week) in recorded or (since is not None and week.end(tz) <= since):
            break
        found.append(week)
        cursor = week_of(fire, tz).start(tz).astimezone(tz)
    return sorted(found)


async def send_week(rt: Runtime, week: Week, *, force: bool = False) -> bool:
    """Build ``week``'s digest and queue it to the recipients; False if it was already sent."""
    s = rt.settings
    if not s.digest.recipients:
        raise ValueError("no [digest] recipients configured")
    if not force:
        async with rt.sessions() as session:
            if await digests.exists(session, str(week)):
                return False
    async with rt.sessions() as session:
        built = await build(session, week, options(s), rt.templates, s.smtp.from_addr)
    messages = built.messages(s.digest.recipients, s.smtp.from_addr, s.smtp.from_name,
                              secret=rt.secret, id_domain=s.message_id_domain)
    # A fresh transaction whose first statement is the INSERT: on SQLite it takes the write lock
    # at once (waiting on the busy timeout) rather than failing on a stale read snapshot.
    async with rt.sessions.begin() as session:
        recorded = await digests.record_run(session, str(week), built.summary(),
                                            built.console_html, messages, force=force)
    if recorded is None:
        log.info("digest %s was sent by another instance", week)
        return False
    log.info("digest %s queued for %d recipients (%d submissions)", week, len(messages),
             built.figures.total)
    rt.outbox_wakeup.set()
    return True


async def catch_up(rt: Runtime) -> list[Week]:
    """Send every due week not recorded yet; return the weeks this call sent."""
    s = rt.settings.digest
    tz, now = ZoneInfo(s.timezone), utcnow()
    oldest = str(week_of(now, tz).shift(-MAX_CATCH_UP - 2))
    async with rt.sessions.begin() as session:
        begins = await digests.since(session, now)
        recorded = await digests.weeks_since(session, oldest)
        first_run = not recorded and await digests.latest_week(session) is None
    sent = []
    # Once a digest is recorded, the last one bounds the catch-up; before that, the record's start.
    for week in due_weeks(s.schedule, tz, now, recorded, first_run,
                          begins if first_run else None):
        if await send_week(rt, week):
            sent.append(week)
    return sent


class DigestWorker(Worker):
    """Sends what is due, then sleeps until the next scheduled run (or a recheck)."""

    name = "digest"
    retry_after = 60.0
    max_backoff = runner.SCHEDULE_RECHECK

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tz = ZoneInfo(rt.settings.digest.timezone)

    async def round(self) -> Next:
        await catch_up(self.rt)
        return runner.until_scheduled(self.rt.settings.digest.schedule, self.tz, utcnow())


async def run(rt: Runtime) -> None:
    await runner.run(rt, DigestWorker(rt))


def task_for(settings: Settings) -> Callable[[Runtime], Awaitable[None]] | None:
    """The digest task, or None when no recipients are configured."""
    return run if settings.digest.recipients else None
