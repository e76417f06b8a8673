"""Intake worker: runs the pipeline on stored raw inputs, a batch per transaction.

Sources only store raw rows; this worker turns them into submissions. A batch of rows is
processed in one transaction (submissions, history, outbox rows, raw rows marked done), so a
crash leaves them pending and they are simply processed again. An unexpected error is ours, not
the sender's: the row is parked as ``held`` with the error and retried, and after
``max_attempts`` it is quarantined for staff (Mailman's shunt queue) instead of being retried
forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import repeat_index
from bot.runtime import Runtime
from bot.workers import runner
from bot.workers.preparer import Preparer
from bot.workers.runner import Next, Worker
from handlers import errors, pipeline, store
from handlers.step import Context, Intake
from storage import raw_intake
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


def _received(payload: dict[str, Any]) -> datetime | None:
    """When staff say a phone call or letter came in (staff entry's 收到时间, checked there:
    not in the future): the clocks run from it, not from the moment it was typed in."""
    value = payload.get("received_at")
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _intake_from_row(row: RawIntake) -> Intake:
    payload = row.payload or {}
    # A status-page addition carries its case's tracking number: not a number for a new letter,
    # and nothing to acknowledge (the page told the citizen it was received).
    addition = bool(payload.get("addition"))
    return Intake(
        raw_id=row.id,
        channel=row.channel,
        received_at=_received(payload) or row.received_at,
        raw=row.raw,
        form=payload.get("fields") if row.raw is None else None,
        form_attachments=(payload.get("attachments") or []) if row.raw is None else [],
        tracking_no=None if addition else row.tracking_no,
        addition_to=row.tracking_no if addition else None,
        actor=payload.get("actor", "system"),
        acknowledge=not (payload.get("no_ack", False) or addition),
    )


def _done_values(intake: Intake) -> dict[str, object]:
    """The raw row's end state after a successful run."""
    if intake.discard is not None:
        return {"id": intake.raw_id, "state": "discarded", "auto": None, "auto_reason": None,
                "submission_id": intake.discard.submission_id, "error": intake.discard.reason}
    return {"id": intake.raw_id, "state": "done", "submission_id": intake.submission_id,
            "auto": intake.auto, "auto_reason": intake.auto_reason, "error": None}


def _outcomes(rt: Runtime, intakes: list[Intake]) -> list[Outcome]:
    """What a committed run did, counted in the metrics."""
    out = []
    for i in intakes:
        if i.discard is not None:
            out.append(Outcome(i.raw_id, "discarded", i.discard.submission_id))
            continue
        rt.metrics.intake.labels(channel=i.channel).inc()
        out.append(Outcome(i.raw_id, "done", i.submission_id, i.tracking_no, i.auto,
                           followup=i.followup_of is not None))
    if any(i.ack_message_id for i in intakes):
        rt.outbox_wakeup.set()
    return out


async def _run_and_mark(session: AsyncSession, rt: Runtime, intakes: list[Intake]) -> None:
    await pipeline.run(intakes, rt.context(session))
    await raw_intake.mark_done_many(session, [_done_values(i) for i in intakes])


def _forget(rt: Runtime, intakes: list[Intake]) -> None:
    """A transaction that filed these letters was rolled back: their ids hold nothing, so the
    repeat index must not hold them either (the store step put each new letter in)."""
    if rt.repeats is not None:
        for intake in intakes:
            if intake.is_new and intake.submission_id is not None:
                rt.repeats.remove(intake.submission_id)


async def process_raw(rt: Runtime, raw_id: int) -> Outcome:
    """Run the pipeline on one raw row in its own transaction; never raises for a problem with
    the input. An unexpected error parks the row for a retry with the error kept."""
    intake: Intake | None = None
    try:
        async with rt.sessions.begin() as session:
            claimed = raw_id in await raw_intake.claim(session, [raw_id])
            row = await raw_intake.get(session, raw_id)
            if row is None or not claimed:
                state = "missing" if row is None else row.state
                return Outcome(raw_id, state, row.submission_id if row else None)
            intake = _intake_from_row(row)
            await _run_and_mark(session, rt, [intake])
    except Exception as exc:  # park it for a retry, keep the error
        if intake is not None:
            _forget(rt, [intake])
        errors.report(log, f"intake {raw_id}", exc)
        rt.metrics.errors.labels(where="intake").inc()
        async with rt.sessions.begin() as session:
            error = "".join(traceback.format_exception(exc))
            state = await raw_intake.mark_failed(
                session, raw_id, error, rt.settings.intake.max_attempts,
                timedelta(seconds=rt.settings.intake.retry_base_seconds))
        return Outcome(raw_id, state)
    assert intake is not None
    return _outcomes(rt, [intake])[0]


async def file_batch(rt: Runtime, intakes: list[Intake], inline: bool = False) -> int:
    """File prepared inputs that do not depend on each other in one transaction: a few
    statements for the batch instead of a dozen per letter. Rows another process took are
    left alone. If the batch fails, each row is filed again on its own (from its stored
    input), so one bad letter holds up nobody else and gets its error recorded. On SQLite the
    transaction runs whole in the database's writing thread (``Sessions.run_transaction``):
    the web pages go on meanwhile."""

    async def file(session: AsyncSession) -> list[Intake]:
        claimed = await raw_intake.claim(session, [i.raw_id for i in intakes])
        todo = [i for i in intakes if i.raw_id in claimed]
        await _run_and_mark(session, rt, todo)
        return todo

    try:
        todo = await rt.sessions.run_transaction(file, inline=inline)
    except Exception as exc:
        _forget(rt, intakes)
        log.warning("intake batch of %d failed (%s: %s); filing its rows one by one",
                    len(intakes), exc.__class__.__name__, errors.redact(str(exc)[:300]))
        for intake in intakes:
            await process_raw(rt, intake.raw_id)
        return len(intakes)
    _outcomes(rt, todo)
    return len(intakes)


class Pace:
    """How much filing runs while citizens are posting: short transactions, with rests.

    On SQLite the form's batch waits for the filing transaction that holds the write slot
    (``storage.db._Turns`` hands the slot to the form first, but cannot cut a transaction
    short), and the filing's CPU shares the interpreter with the web pages. A batch of 100
    letters held the slot for a quarter of a second under a rush, and every POST of that moment
    waited as long; filing back to back took half the process from the pages. In the writing
    thread even one letter held the slot for 10-70 ms: the thread gets the interpreter back
    from the busy loop only every few milliseconds, after each statement. So while the form is
    busy a transaction takes as many letters as fit in ``budget`` seconds (by the time the last
    ones took a letter; at least one) and runs on the event loop itself (``inline``: a few
    milliseconds the pages wait, instead of tens), and the filing then rests, taking at most
    ``share`` of the time: it keeps going (an urgent letter's alert is not held up for the
    whole rush) and catches up when the rush is over. When it is quiet, the whole run goes at
    once in the thread (the fewest transactions, the fastest catch-up).

    While the pages keep the event loop saturated (each pass over its ready callbacks takes
    ``saturated`` seconds or more: requests are queued behind one another), a transaction waits
    until three passes in a row are short again, or ``floor`` seconds after the last one.
    A transaction of one letter holds the loop 5-15 ms; at a quarter of the time that was some
    ten a second, so that a third of all requests under a rush of fifty clients waited through
    one (``bench/web_form.py --sustained --stalls``), for a few letters out of thousands filed
    meanwhile: a saturated rush outruns the filing whatever its share, and the letters wait
    for its end all the same. A steady stream that leaves the loop room is filed at ``share``
    as before."""

    def __init__(self, budget: float = 0.005, share: float = 0.25, first: int = 1,
                 saturated: float = 0.001, floor: float = 5.0) -> None:
        self.budget = budget
        self.share = share
        self.per_letter: float | None = None  # seconds, a moving average
        self.first = first  # letters in the first busy transaction, before any is timed
        self.saturated = saturated
        self.floor = floor
        self.last = float("-inf")  # time.monotonic() when the last transaction ended

    def size(self, busy: bool, left: int) -> int:
        if not busy:
            return left
        if self.per_letter is None:
            return min(left, self.first)
        return max(1, min(left, int(self.budget / self.per_letter)))

    def record(self, letters: int, seconds: float) -> None:
        each = seconds / max(letters, 1)
        self.per_letter = each if self.per_letter is None else 0.7 * self.per_letter + 0.3 * each
        self.last = time.monotonic()

    def rest(self, seconds: float) -> float:
        """How long to wait after a busy transaction that took ``seconds``."""
        return seconds * (1 / self.share - 1)

    def may_file(self, passes: list[float], now: float) -> bool:
        """Whether a busy transaction may run now, given how long the event loop's last passes
        took (seconds; see :func:`_passes`): when they were all short, or ``floor`` seconds
        after the last transaction."""
        return max(passes) < self.saturated or now - self.last >= self.floor


async def _passes(n: int = 3) -> list[float]:
    """How long each of the event loop's next ``n`` passes took: the time until this task ran
    again after yielding, i.e. every callback that was ready before it (a request parsed, a
    page written, a commit). Well under a millisecond when the loop has room."""
    loop = asyncio.get_running_loop()
    took = []
    for _ in range(n):
        began = loop.time()
        await asyncio.sleep(0)
        took.append(loop.time() - began)
    return took


async def _room(rt: Runtime, pace: Pace, poll: float = 0.05) -> None:
    """Wait (polling every ``poll`` seconds) until ``pace`` lets a busy transaction run, the
    form is quiet again, or the service stops."""
    while rt.foreground.busy() and not rt.stopping.is_set():
        if pace.may_file(await _passes(), time.monotonic()):
            return
        await asyncio.sleep(poll)


async def _file_paced(rt: Runtime, run_: list[Intake], pace: Pace) -> int:
    """File one independent run (``store.independent``) in pieces as :class:`Pace` allows;
    pieces of an independent run are filed in order, so the result is the same."""
    handled = start = 0
    while start < len(run_):
        if rt.foreground.busy():
            await _room(rt, pace)
        busy = rt.foreground.busy()
        size = pace.size(busy, len(run_) - start)
        began = time.monotonic()
        handled += await file_batch(rt, run_[start:start + size], inline=busy)
        took = time.monotonic() - began
        pace.record(size, took)
        start += size
        if busy and rt.foreground.busy():
            await asyncio.sleep(pace.rest(took))
    return handled


async def drain(rt: Runtime, limit: int = 1000, batch: int = 100,
                preparer: Preparer | None = None, pace: Pace | None = None) -> int:
    """Process what is due now; return how many rows were handled.

    Rows are read a batch at a time and prepared together (parsed, judged, classified in one
    call, tracking numbers drawn, acknowledgements drafted: in worker processes or a thread, so
    that a batch of large letters does not hold up the web pages), then filed in as few
    transactions as their dependencies allow (``store.independent``), short ones while
    citizens are posting (``pace``). The next batch is prepared while this one is filed."""
    preparer = preparer or Preparer(rt.settings, processes=0)
    pace = pace or Pace()
    async with rt.sessions() as session:
        ids = await raw_intake.due_ids(session, limit)
    chunks = [ids[start:start + batch] for start in range(0, len(ids), batch)]
    handled = 0
    ahead = asyncio.ensure_future(_read_and_prepare(rt, preparer, chunks[0])) if chunks else None
    try:
        for n in range(len(chunks)):
            assert ahead is not None
            intakes, ctx = await ahead
            ahead = (asyncio.ensure_future(_read_and_prepare(rt, preparer, chunks[n + 1]))
                     if n + 1 < len(chunks) else None)
            for run_ in store.independent(intakes, ctx):
                if rt.stopping.is_set():
                    return handled
                handled += await _file_paced(rt, run_, pace)
    finally:
        if ahead is not None and not ahead.done():  # stopped: nothing was claimed for it
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)
    return handled


async def _read_and_prepare(rt: Runtime, preparer: Preparer,
                            ids: list[int]) -> tuple[list[Intake], Context]:
    async with rt.sessions() as session:
        rows = await raw_intake.get_many(session, ids)
        ctx = rt.context(session)
    return await preparer.prepare([_intake_from_row(row) for row in rows], ctx), ctx


class IntakeWorker(Worker):
    """Files what is due; sleeps until a source commits new input (or the poll interval)."""

    name = "intake"

    def __init__(self, rt: Runtime, poll_seconds: float = 2.0,
                 preparer: Preparer | None = None) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        self.retry_after = poll_seconds
        self.preparer = preparer or Preparer(rt.settings)
        self.pace = Pace()
        self.wakeup = rt.intake_wakeup

    async def start(self) -> None:
        self.preparer.start()
        if not self.preparer.in_processes and self.rt.classifier_holder is not None:
            await _load_classifier(self.rt)
        # At once, not at the first quiet moment: a service just started has no rush yet, and
        # the index's set-up (the report's n-grams and those common to the shipped letters:
        # about a second of CPU) slowed every page it shared the interpreter with.
        await self._build_repeat_index()
        # /healthz says "starting" until the first round: that round comes once the prepare
        # processes hold their model, so "running" means a letter is filed without a warm-up.
        try:
            await self.preparer.ready()
        except Exception as exc:  # noqa: BLE001 - the rounds meet it again and report it
            log.warning("prepare processes not ready at start: %s", exc.__class__.__name__)

    async def round(self) -> Next:
        await self.rt.foreground.wait_quiet()  # citizens posting letters go first
        if self.rt.repeats is None:
            await self._build_repeat_index()
        handled = await drain(self.rt, preparer=self.preparer, pace=self.pace)
        return Next(0.0 if handled else self.poll_seconds)

    async def _build_repeat_index(self) -> None:
        """At start (and again each round until it works): a letter filed without the index
        gets its same-writer links only."""
        try:
            self.rt.repeats = await repeat_index.build(self.rt.sessions, self.rt.settings)
            self.rt.settle()
        except Exception as exc:  # noqa: BLE001 - ours, reported; filing goes on without it
            errors.report(log, "repeat index", exc)
            self.rt.metrics.errors.labels(where="intake").inc()

    async def close(self) -> None:
        await asyncio.to_thread(self.preparer.close)


async def run(rt: Runtime, poll_seconds: float = 2.0, preparer: Preparer | None = None) -> None:
    """Forever (until ``rt.stopping``): file due rows, on the runner."""
    await runner.run(rt, IntakeWorker(rt, poll_seconds, preparer))


async def _load_classifier(rt: Runtime) -> None:
    """Letters are prepared in this process: load the model now, not on the first letter. A
    model that fails to load is the loop's to report (it meets the same error, and retries)."""
    try:
        scorer = await asyncio.to_thread(rt.classifier_holder.get)
        if scorer is not None:  # the word segmenter's dictionary is built on first use
            await asyncio.to_thread(scorer.classify, "", "派出所民警办事拖拉")
    except Exception as exc:  # noqa: BLE001 - reported by the loop, which meets it again
        log.warning("classifier not loaded at start: %s", exc.__class__.__name__)
