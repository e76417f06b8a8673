"""The urgent letters' escalation: an urgent letter nobody has taken in the console ("我来处理")
within ``[urgent] alert_minutes`` of being marked alerts the supervisors (issue #19).

The first alert, to the duty list, is queued by the intake pipeline itself (handlers/urgent.py),
in the transaction that files the letter; this worker only watches the clock. Each escalation is
claimed on the letter (``urgent_escalated_at``) in the same transaction as its outbox rows, so a
restart or a second instance never alerts twice. It sleeps until the oldest untaken letter's
time is up, and at most ``RECHECK_SECONDS``, so a moved clock (storage.clock.travel) or a letter
marked by another instance is noticed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.runtime import Runtime
from bot.workers import runner
from bot.workers.runner import Next, Worker
from handlers import urgent
from storage import urgent as store
from storage.clock import utcnow

log = logging.getLogger(__name__)
RECHECK_SECONDS = 15.0


async def escalate_due(rt: Runtime) -> int:
    """Alert the supervisors of every urgent letter whose time is up; how many letters."""
    minutes = rt.settings.urgent.alert_minutes
    now = utcnow()
    async with rt.sessions() as db:
        late = await store.untaken_since(db, now - timedelta(minutes=minutes))
        people = [u.email for u in await store.supervisors(db) if u.email] if late else []
    done = 0
    for sub in late:
        async with rt.sessions.begin() as db:
            if not await store.claim_escalation(db, sub.id, now):
                continue  # taken meanwhile, or another instance alerted
            await urgent.queue_escalation(
                rt.context(db), submission_id=sub.id, tracking_no=sub.tracking_no,
                category=sub.category, taxonomy_version=sub.taxonomy_version,
                restricted=bool(sub.restricted), reasons=sub.urgent_reasons,
                recipients=people, minutes=minutes)
        done += 1
    if done:
        rt.outbox_wakeup.set()
        log.info("urgent letters not taken in %d minutes: %d escalated", minutes, done)
    return done


async def _delay(rt: Runtime) -> float:
    """Seconds until the oldest untaken letter's time is up, at most RECHECK_SECONDS."""
    async with rt.sessions() as db:
        oldest = await store.next_deadline(db)
    if oldest is None:
        return RECHECK_SECONDS
    due = oldest + timedelta(minutes=rt.settings.urgent.alert_minutes)
    return max(0.5, min(RECHECK_SECONDS, (due - utcnow()).total_seconds()))


class UrgentWorker(Worker):
    """Escalates what is due, then sleeps until the next letter's time is up."""

    name = "urgent"
    retry_after = 5.0
    max_backoff = RECHECK_SECONDS

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def round(self) -> Next:
        await escalate_due(self.rt)
        return Next(await _delay(self.rt))


async def run(rt: Runtime) -> None:
    await runner.run(rt, UrgentWorker(rt))
