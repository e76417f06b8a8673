"""Preparing letters for the intake worker, in worker processes when configured.

``pipeline.prepare`` does the intake's work that needs no database: parse, judge machine mail,
classify, draw the tracking number and draft the acknowledgement. In the service's process it
runs in a thread, which still competes for the GIL with the event loop that serves the web
pages and talks to the database; measured on a burst of mail it was a third of the process's
CPU. With ``[intake] prepare_processes = N`` a pool of N processes does it instead (the
standard library's ``ProcessPoolExecutor``, started with "spawn": forking a process that runs
threads can copy a held lock). Each process loads its own classifier and follows retraining
the way the service does (``ClassifierHolder`` rereads the model file when it changes).

Preparation is an optimisation, never a condition: a pool that breaks (a process killed, a
letter that crashes the parser outright) is logged and replaced, and the batch is prepared in
a thread; what cannot be prepared at all is done by the pipeline in the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bot.config import Settings
from bot.runtime import trim_heap
from handlers import pipeline
from handlers.step import Context, Intake

log = logging.getLogger(__name__)


class Preparer:
    """Prepares batches in a thread (``processes == 0``) or in a pool of processes."""

    def __init__(self, settings: Settings, processes: int | None = None) -> None:
        self._settings = settings
        self._processes = settings.intake.prepare_processes if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None
        self._warming: list[Future[None]] = []

    @property
    def in_processes(self) -> bool:
        return self._processes > 0

    def start(self) -> None:
        """Start the pool and load the classifier in each process now, not on the first
        letter (which would otherwise wait for it)."""
        if self._processes > 0 and self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_process, initargs=(self._settings, self._settings.secret()))
            self._warming = [self._pool.submit(_warm) for _ in range(self._processes)]

    async def ready(self) -> None:
        """Wait until the processes are started and hold their classifier."""
        self.start()
        await asyncio.gather(*(asyncio.wrap_future(f) for f in self._warming))

    async def prepare(self, intakes: list[Intake], ctx: Context) -> list[Intake]:
        """The batch prepared, in order (in a pool: new objects, the stored input kept)."""
        if self._processes > 0 and intakes:
            self.start()
            assert self._pool is not None
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self._pool, _prepare_here, intakes)
            # While the process prepares the batch, this one waits: the moment to give back
            # what filing the previous batch left free (see bot.runtime.trim_heap).
            trim_heap()
            try:
                done = await work
            except (BrokenProcessPool, OSError) as exc:
                log.warning("prepare pool failed (%s); preparing in a thread and starting a "
                            "new pool", exc.__class__.__name__)
                self.close(wait=False)
            else:
                for fresh, old in zip(done, intakes, strict=True):
                    fresh.raw = old.raw
                return list(done)
        await asyncio.to_thread(pipeline.prepare, intakes, ctx)
        return intakes

    def close(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


# -- in the worker process -------------------------------------------------------------------

_state: dict[str, Any] = {}


def _start_process(settings: Settings, secret: bytes) -> None:
    from bot.runtime import load_classifier_holder, mail_templates

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    _state["settings"] = settings
    _state["secret"] = secret  # the service's: the signed Message-IDs must verify there
    _state["templates"] = mail_templates(settings)
    _state["holder"] = load_classifier_holder(settings)
    _state["shingler"] = _shingler(settings)


def _shingler(settings: Settings) -> Any:
    """The repeat index's shingler, as the service's index has it; None if it cannot be set
    up (the service then cuts the letters itself, in the transaction)."""
    from bot.repeat_index import shingler_for

    try:
        return shingler_for(settings)
    except Exception as exc:  # noqa: BLE001 - an optimisation, never a condition
        log.warning("repeat shingler not set up in a prepare process: %s",
                    exc.__class__.__name__)
        return None


def _exit_with(parent_sentinel: int) -> None:
    """Exit when the service's process is gone. A pool's processes outlive a parent that was
    killed (``kill -9``, the OOM killer), each holding a classifier's memory, blocked forever
    on a queue nobody will write to."""
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


def _warm() -> None:
    """Load the model and classify one line, which also builds the word segmenter's
    dictionary: the first letter should not wait for either."""
    holder = _state.get("holder")
    scorer = holder.get() if holder is not None else None
    if scorer is not None:
        scorer.classify("", "派出所民警办事拖拉")
    trim_heap()  # what loading the model and setting up the shingler left free


def _prepare_here(intakes: list[Intake]) -> list[Intake]:
    """Runs in the worker process. What goes back is what the transaction needs: not the
    stored bytes (the service has them) nor, except for bounces (whose report parts are read
    in the transaction), the parsed header tree."""
    from bot.runtime import pipeline_context

    settings: Settings = _state["settings"]
    ctx = pipeline_context(settings, None, secret=_state["secret"],
                           templates=_state["templates"], classifier_holder=_state.get("holder"),
                           shingler=_state.get("shingler"))
    pipeline.prepare(intakes, ctx)
    for intake in intakes:
        intake.raw = None
        if intake.parsed is not None and intake.auto != "bounce":
            intake.parsed.headers = None  # type: ignore[assignment]
    trim_heap()  # the batch's stored mail and parse trees, now free: 2-3 MB of RSS otherwise
    return intakes
