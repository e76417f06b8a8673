"""The morning reminders: at ``[casework] remind_at`` each day (a time or a cron expression in
``[digest] timezone``), every assignee and supervisor with an address gets one mail of their
cases due soon and overdue, and each forwarding unit whose due date is near is reminded
(handlers/reminders.py composes; the outbox delivers, holding reminder mail in the quiet hours).

The worker keeps no state that matters: on each wake-up it asks whether today's run time has
passed, and queues what is missing for today. Each staff member's mail is recorded per day
(``reminder_runs``) and each unit's reminder on the case (``unit_reminded_at``) in the same
transaction as the outbox row, so a restart or a second instance sends neither twice. A service
that was down at the run time catches up the same day, never a past day's reminder.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.runtime import Runtime
from bot.web.console.present import category_name
from bot.workers import runner
from bot.workers.runner import Next, Worker
from handlers import reminders
from storage import reminders as store
from storage import review_list
from storage.clock import utcnow

log = logging.getLogger(__name__)


def today_run(cron: str, tz: ZoneInfo, now: datetime) -> date | None:
    """The local day whose run time has passed by ``now``, if that day is today."""
    local = now.astimezone(tz)
    fire = croniter(cron, local).get_prev(datetime)
    return fire.date() if fire.date() == local.date() else None


async def run_day(rt: Runtime, day: date) -> tuple[int, int]:
    """Queue ``day``'s reminders not queued yet: (staff mails, unit reminders)."""
    s = rt.settings
    tz = ZoneInfo(s.digest.timezone)
    now = utcnow()
    timing = reminders.Timing(s.intake.accept_days, s.intake.handle_days, tz, now)
    async with rt.sessions() as db:
        cases = await store.open_cases(db)
        people = await store.recipients(db)
        done = await store.reminded(db, str(day))
        staff = {u.id: u for u in await review_list.staff(db)}
        units = await store.units_due(db, day + timedelta(days=s.casework.unit_remind_days))
    lines = reminders.due_lines(cases, timing, s.casework.due_soon_days, s.web.public_url,
                                category_name)
    mails = 0
    for user in people:
        if user.id in done:
            continue
        try:
            async with rt.sessions.begin() as db:
                mails += await reminders.queue_morning(
                    rt.context(db), user, day, reminders.lines_for(user, cases, lines), now)
        except reminders.AlreadySent:
            continue
    sent_units = 0
    for sub in units:
        try:
            async with rt.sessions.begin() as db:
                who = await reminders.queue_unit(
                    rt.context(db), sub, s.casework.unit_emails,
                    staff.get(sub.assignee_id or 0), tz, now)
        except reminders.AlreadySent:
            continue
        sent_units += who is not None
    if mails or sent_units:
        rt.outbox_wakeup.set()
    log.info("reminders of %s: %d staff mails, %d unit reminders queued", day, mails, sent_units)
    return mails, sent_units


class ReminderWorker(Worker):
    """Queues today's reminders once their time has passed, then sleeps until the next run."""

    name = "reminders"
    retry_after = 60.0
    max_backoff = runner.SCHEDULE_RECHECK

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tz = ZoneInfo(rt.settings.digest.timezone)
        self.cron = rt.settings.casework.remind_cron
        self.done: date | None = None  # the day this process finished (the database knows too)

    async def round(self) -> Next:
        now = utcnow()
        day = today_run(self.cron, self.tz, now)
        if day is not None and day != self.done:
            await run_day(self.rt, day)
            self.done = day
        return runner.until_scheduled(self.cron, self.tz, now)


async def run(rt: Runtime) -> None:
    await runner.run(rt, ReminderWorker(rt))
