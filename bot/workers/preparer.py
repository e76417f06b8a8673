"""Preparing letters for the intake worker, in worker processes when configured.

``pipeline.prepare`` does the intake's work that needs no database: parse, judge machine mail,
classify, draw the tracking number and draft the acknowledgement. In the service's process it
runs in a thread, which still competes for the GIL with the event loop that serves the web
pages and talks to the database; measured on a burst of mail it was a third of the process's
CPU. With ``[intake] prepare_processes = N``, N child processes do it instead. Each loads its
own classifier and follows retraining the way the service does (``ClassifierHolder`` rereads
the model file when it changes).

A child is a fresh interpreter (never a fork: forking a process that runs threads can copy a
held lock) that reads pickled batches from its stdin and writes them back prepared on its
stdout. Written here rather than taken from the standard library's ``ProcessPoolExecutor``:
started with "spawn", that pool also starts multiprocessing's resource tracker, a third
process (13 MB RSS of the service's 300 MB budget) whose only job is to unlink the named
semaphores of the pool's queues if the service is killed. Pipes need no semaphore, and so no
tracker: a child whose parent is gone reads the end of its stdin and exits, whatever killed
the parent.

Preparation is an optimisation, never a condition: a child that dies (killed, or a letter that
crashes the parser outright) is logged and replaced, and the batch is prepared in a thread;
what cannot be prepared at all is done by the pipeline in the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from bot.config import Settings
from bot.runtime import trim_heap
from handlers import pipeline
from handlers.step import Context, Intake

log = logging.getLogger(__name__)

# What a child runs: the service's module search path first (as "spawn" gives it), then this
# module's child_main(). The path comes as the one argument.
_CHILD = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
          "from bot.workers.preparer import child_main; child_main()")


class Broken(Exception):
    """A prepare process is gone (killed, crashed, or its pipe closed)."""


class _Child:
    """One prepare process and its two pipes. ``call`` is blocking (run in a thread) and one
    at a time: the pipe carries one request and then its answer."""

    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(sys.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self._lock = threading.Lock()
        self._started = False
        self._send((settings, secret))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def started(self) -> None:
        """Wait until the child holds its classifier (its answer to the first message)."""
        with self._lock:
            self._wait_started()

    def call(self, intakes: list[Intake]) -> list[Intake]:
        with self._lock:
            self._wait_started()
            self._send(intakes)
            return self._receive()

    def _wait_started(self) -> None:
        if not self._started:
            self._receive()
            self._started = True

    def _send(self, obj: Any) -> None:
        assert self.proc.stdin is not None
        try:
            pickle.dump(obj, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed here
            raise Broken(exc.__class__.__name__) from exc

    def _receive(self) -> Any:
        assert self.proc.stdout is not None
        try:
            ok, value = pickle.load(self.proc.stdout)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
            raise Broken(exc.__class__.__name__) from exc
        if not ok:
            raise value  # the child's exception, as the pool re-raised it
        return value

    def close(self, wait: bool) -> None:
        """``wait``: the end of its stdin, so that it finishes what it does and exits (killed
        if it has not within 10 s); else killed at once. Reaped either way, then its pipes
        closed (a pipe is closed once nothing can be blocked reading it)."""
        if wait:
            self._close(self.proc.stdin)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                wait = False
        if not wait:
            self.proc.kill()
            self.proc.wait()
        self._close(self.proc.stdin)
        self._close(self.proc.stdout)

    @staticmethod
    def _close(pipe: IO[bytes] | None) -> None:
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()


class Preparer:
    """Prepares batches in a thread (``processes == 0``) or in N child processes."""

    def __init__(self, settings: Settings, processes: int | None = None) -> None:
        self._settings = settings
        self._processes = settings.intake.prepare_processes if processes is None else processes
        self._children: list[_Child] = []
        self._idle: list[_Child] = []
        # The threads that wait for the children's answers: their own, so that a batch in
        # progress never takes one of the event loop's default threads from the web pages.
        self._waiting: ThreadPoolExecutor | None = None

    @property
    def in_processes(self) -> bool:
        return self._processes > 0

    @property
    def pids(self) -> list[int]:
        """The prepare processes' ids (for /proc readers: the benchmarks, the tests)."""
        return [c.pid for c in self._children]

    def start(self) -> None:
        """Start the processes; each loads the classifier now, not on the first letter (which
        would otherwise wait for it)."""
        while len(self._children) < self._processes:
            try:
                child = _Child(self._settings, self._settings.secret())
            except (Broken, OSError) as exc:  # no process to be had now: a thread prepares
                log.warning("prepare process not started: %s", exc.__class__.__name__)
                return
            self._children.append(child)
            self._idle.append(child)

    async def ready(self) -> None:
        """Wait until the processes are started and hold their classifier."""
        self.start()
        children = list(self._children)
        results = await asyncio.gather(*(asyncio.to_thread(c.started) for c in children),
                                       return_exceptions=True)
        for child, result in zip(children, results, strict=True):
            if isinstance(result, Broken):
                self._drop(child)
            if isinstance(result, BaseException):
                raise result

    async def prepare(self, intakes: list[Intake], ctx: Context) -> list[Intake]:
        """The batch prepared, in order (in a process: new objects, the stored input kept)."""
        if self._processes > 0 and intakes:
            self.start()
        if self._children and intakes:
            child = self._idle.pop() if self._idle else self._children[0]
            if self._waiting is None:
                self._waiting = ThreadPoolExecutor(self._processes, "prepare-wait")
            work = asyncio.get_running_loop().run_in_executor(self._waiting, child.call, intakes)
            # While the process prepares the batch, this one waits: the moment to give back
            # what filing the previous batch left free (see bot.runtime.trim_heap).
            trim_heap()
            try:
                done = await work
            except Broken as exc:
                log.warning("prepare process %s failed (%s); preparing in a thread and starting "
                            "a new one", child.pid, exc)
                self._drop(child)
            except BaseException:
                self._release(child)  # the letter's error (or a stop), not the process's
                raise
            else:
                self._release(child)
                for fresh, old in zip(done, intakes, strict=True):
                    fresh.raw = old.raw
                return list(done)
        await asyncio.to_thread(pipeline.prepare, intakes, ctx)
        return intakes

    def _release(self, child: _Child) -> None:
        if child in self._children and child not in self._idle:
            self._idle.append(child)

    def _drop(self, child: _Child) -> None:
        if child in self._children:
            self._children.remove(child)
        if child in self._idle:
            self._idle.remove(child)
        child.close(wait=False)

    def close(self, wait: bool = True) -> None:
        children, self._children, self._idle = self._children, [], []
        for child in children:
            child.close(wait)
        if self._waiting is not None:
            self._waiting.shutdown(wait=False)  # each thread ends with its child's pipe
            self._waiting = None


# -- in the worker process -------------------------------------------------------------------

_state: dict[str, Any] = {}


def child_main() -> None:
    """A prepare process: the settings and the service's secret first, then batches, each
    answered with (True, the batch prepared) or (False, the exception), until its stdin ends:
    the service closed it, or the service is gone."""
    # The service stops it; a terminal's ^C reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what anything prints goes to stderr, not into the answers
    try:
        settings, secret = pickle.load(requests)
    except EOFError:
        return
    if not _answer(answers, _start_and_warm, settings, secret):
        return  # not started: the service meets the end of this pipe and starts another
    while True:
        try:
            intakes = pickle.load(requests)
        except EOFError:
            return
        _answer(answers, _prepare_here, intakes)


def _start_and_warm(settings: Settings, secret: bytes) -> None:
    _start_process(settings, secret)
    _warm()


def _answer(out: IO[bytes], fn: Any, *args: Any) -> bool:
    """Run ``fn``, write its answer; whether it succeeded."""
    try:
        message: tuple[bool, Any] = (True, fn(*args))
    except Exception as exc:  # noqa: BLE001 - the service's to handle, as a pool re-raises it
        message = (False, exc)
    try:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an answer that cannot be pickled
        data = pickle.dumps((False, RuntimeError(f"answer not picklable: {exc!r}")))
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:  # the service is gone; the next read ends this process
        pass
    return message[0]


def _start_process(settings: Settings, secret: bytes) -> None:
    from bot.runtime import load_classifier_holder, mail_templates

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
