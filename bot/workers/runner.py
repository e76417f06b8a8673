"""One loop for every background worker: rounds, waits, backoff, state, logging and stop.

A worker (intake, outbox, digest, maintenance, the Maildir source) supplies one round of work,
:meth:`Worker.round`, which returns when it wants the next one (:class:`Next`). Everything around
the round is the runner's, as Mailman's ``core/runner.py`` runs each queue's ``_one_iteration``
and snoozes between them:

- **state** on /healthz (``rt.worker(name)``): "running" with the time of the last good round,
  "error" with the kind of error (never its message: /healthz is public), or the worker's own
  problem (:attr:`Next.problem`, e.g. the SMTP relay unreachable);
- **errors** in two classes (``handlers.errors``): the sender's fault at info, ours at error with
  personal data redacted, each counted in ``feedback_errors_total{where=<worker>}``;
- **backoff** after a round that raised: ``retry_after`` seconds, doubled for each failure in a
  row, at most ``max_backoff``; new work does not cut it short (the round would fail again);
- **the wait** between rounds: ``Next.delay`` seconds, ended early by the worker's ``wakeup``
  event (cleared before each round, so work announced during a round is not missed);
- **stop**: ``rt.stopping`` is checked before every round and ends every wait. A round is never
  cancelled by the runner, so no task stops in the middle of a database call.

Adding a worker is one file: a :class:`Worker` subclass with its ``round`` and a ``run(rt)`` that
hands it to :func:`run`, listed in ``bot/app.py``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.runtime import Runtime
from handlers.errors import SenderFault, report
from storage.clock import utcnow

log = logging.getLogger(__name__)
BACKOFF_MAX = 60.0
# A scheduled worker (digest, reminders) wakes at least this often, so that a moved clock
# (storage.clock.travel) or a changed record is noticed before the next scheduled run.
SCHEDULE_RECHECK = 300.0


@dataclass(frozen=True)
class Next:
    """What a round asks of the runner."""

    delay: float = 0.0  # seconds until the next round at the latest; 0: at once
    problem: str | None = None  # the worker is not doing its job (shown on /healthz), e.g. an outage


def until_scheduled(schedule: str, tz: ZoneInfo, now: datetime) -> Next:
    """The wait until the next run of ``schedule`` (a cron line read in ``tz``), at least 0.5 s
    (a run that just happened is not repeated at once) and at most :data:`SCHEDULE_RECHECK`."""
    nxt = croniter(schedule, now.astimezone(tz)).get_next(datetime)
    return Next(min(SCHEDULE_RECHECK, max(0.5, (nxt - now).total_seconds())))


class Worker:
    """One background worker: a name and a round; ``start``/``close`` around the rounds."""

    name = "worker"
    first_delay = 0.0  # seconds before the first round
    retry_after = 2.0  # seconds after a failed round; doubled for each failure in a row
    max_backoff = BACKOFF_MAX
    wakeup: asyncio.Event | None = None  # set when new work is committed: ends the wait early

    async def start(self) -> None:
        """Before the first round (start processes, load a model)."""

    async def round(self) -> Next:
        raise NotImplementedError

    async def close(self) -> None:
        """After the last round, also when the runner is cancelled."""


def backoff(worker: Worker, failures: int) -> float:
    """The wait after ``failures`` failed rounds in a row."""
    return min(worker.max_backoff, worker.retry_after * 2 ** min(failures - 1, 16))


async def run(rt: Runtime, worker: Worker) -> None:
    """Run ``worker``'s rounds until ``rt.stopping`` is set."""
    state = rt.worker(worker.name)
    await worker.start()
    try:
        await _wait(rt, worker.first_delay, None)
        failures = 0
        while not rt.stopping.is_set():
            if worker.wakeup is not None:
                worker.wakeup.clear()
            try:
                nxt = await worker.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                _failed(rt, worker, exc)
                await _wait(rt, backoff(worker, failures), None)
                continue
            failures = 0
            if nxt.problem is not None:
                state.state, state.last_error = "error", nxt.problem
            else:
                state.state, state.last_success = "running", utcnow()
            if nxt.delay > 0:
                await _wait(rt, nxt.delay, worker.wakeup)
    finally:
        await worker.close()


def _failed(rt: Runtime, worker: Worker, exc: Exception) -> None:
    """A round raised: log it as the kind of error it is, count it, show it on /healthz."""
    report(log, f"{worker.name} worker", exc)
    rt.metrics.errors.labels(where=worker.name).inc()
    if not isinstance(exc, SenderFault):
        state = rt.worker(worker.name)
        state.state, state.last_error = "error", exc.__class__.__name__


async def _wait(rt: Runtime, seconds: float, wakeup: asyncio.Event | None) -> None:
    """Wait ``seconds``, or until the service stops or ``wakeup`` is set.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a
    cancellation that races with its own timeout, and a worker then never stops."""
    if seconds <= 0 or rt.stopping.is_set():
        return
    events = [rt.stopping] + ([wakeup] if wakeup is not None else [])
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        async with asyncio.timeout(seconds):
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        pass
    finally:
        for waiter in waiters:
            waiter.cancel()
