"""Intake worker: runs the pipeline on stored raw inputs, one transaction each.

Sources only store raw rows; this worker turns them into submissions. A row is processed in one
transaction (submission, history, outbox row, raw row marked done), so a crash leaves it pending
and it is simply processed again. An unexpected error is ours, not the sender's: the row is parked
as ``held`` with the error and retried, and after ``max_attempts`` it is quarantined for staff
(Mailman's shunt queue) instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta

from bot.runtime import Runtime, wait_event
from handlers import pipeline
from handlers.pipeline import Discard, Intake
from storage import intake as raw_intake
from storage.db import utcnow
from storage.models import RawIntake

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    raw_id: int
    state: str  # done, duplicate, discarded, held, quarantined, missing
    submission_id: int | None = None
    tracking_no: str | None = None
    auto: str | None = None
    followup: bool = False


def _intake_from_row(row: RawIntake) -> Intake:
    payload = row.payload or {}
    return Intake(
        raw_id=row.id,
        channel=row.channel,
        received_at=row.received_at,
        raw=row.raw,
        form=payload.get("fields") if row.raw is None else None,
        tracking_no=row.tracking_no,
        actor=payload.get("actor", "system"),
        acknowledge=not payload.get("no_ack", False),
    )


def _same_input(prepared: Intake, fresh: Intake) -> bool:
    return (prepared.raw_id == fresh.raw_id and prepared.raw == fresh.raw
            and prepared.form == fresh.form)


async def process_raw(rt: Runtime, raw_id: int, prepared: Intake | None = None) -> Outcome:
    """Run the pipeline on one raw row; never raises for a problem with the input.

    ``prepared`` is this row's Intake already parsed and classified by :func:`drain` ahead of
    the transaction; it is used only if the row still holds the same input."""
    try:
        async with rt.sessions.begin() as session:
            claimed = await raw_intake.claim(session, raw_id)
            row = await raw_intake.get(session, raw_id)
            if row is None or not claimed:
                state = "missing" if row is None else row.state
                return Outcome(raw_id, state, row.submission_id if row else None)
            fresh = _intake_from_row(row)
            intake = prepared if prepared is not None and _same_input(prepared, fresh) else fresh
            ctx = rt.context(session)
            try:
                await pipeline.run(intake, ctx)
            except Discard as d:
                await raw_intake.mark_done(session, raw_id, submission_id=d.submission_id,
                                           state="discarded", note=d.reason)
                return Outcome(raw_id, "discarded", d.submission_id)
            await raw_intake.mark_done(session, raw_id, submission_id=intake.submission_id,
                                       auto=intake.auto, auto_reason=intake.auto_reason)
    except Exception as exc:  # ours, not the sender's: park it for a retry, keep the error
        log.error("intake %s failed: %s", raw_id, exc.__class__.__name__, exc_info=True)
        rt.metrics.errors.labels(where="intake").inc()
        async with rt.sessions.begin() as session:
            error = "".join(traceback.format_exception(exc))
            state = await raw_intake.mark_failed(
                session, raw_id, error, rt.settings.intake.max_attempts,
                timedelta(seconds=rt.settings.intake.retry_base_seconds))
        return Outcome(raw_id, state)
    rt.metrics.intake.labels(channel=intake.channel).inc()
    if intake.ack_message_id:
        rt.outbox_wakeup.set()
    return Outcome(raw_id, "done", intake.submission_id, intake.tracking_no, intake.auto,
                   followup=intake.followup_of is not None)


async def drain(rt: Runtime, limit: int = 200, batch: int = 50) -> int:
    """Process what is due now; return how many rows were handled.

    Rows are read a batch at a time and prepared together (parsed, classified in one call),
    then each is filed in its own transaction as before."""
    async with rt.sessions() as session:
        ids = await raw_intake.due_ids(session, limit)
    handled = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        async with rt.sessions() as session:
            intakes = [_intake_from_row(row) for row in await raw_intake.get_many(session, chunk)]
        classifier = rt.classifier_holder.get() if rt.classifier_holder else None
        # In a thread: a batch of large letters must not hold up the web pages for its parse.
        await asyncio.to_thread(pipeline.prepare, intakes, classifier,
                                rt.settings.intake.max_message_bytes)
        by_id = {i.raw_id: i for i in intakes}
        for raw_id in chunk:
            if rt.stopping.is_set():
                return handled
            await process_raw(rt, raw_id, by_id.get(raw_id))
            handled += 1
    return handled


async def run(rt: Runtime, poll_seconds: float = 2.0) -> None:
    """Forever: process due rows, then sleep until woken or the poll interval passes."""
    state = rt.worker("intake")
    while not rt.stopping.is_set():
        try:
            handled = await drain(rt)
            state.state, state.last_success = "running", utcnow()
            if handled:
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.state, state.last_error = "error", exc.__class__.__name__
            log.error("intake worker error: %s", exc.__class__.__name__, exc_info=True)
        rt.intake_wakeup.clear()
        await wait_event(rt.intake_wakeup, poll_seconds)
