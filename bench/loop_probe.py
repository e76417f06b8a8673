"""Run ``feedback-bot`` with a probe on its event loop: how often and how long the loop stalls.

For ``bench/web_form.py --stalls``; the service itself carries no probe. A timer on the service's
loop asks to wake every millisecond and records how late it woke: a wake-up later than that is a
stretch of time in which no request could be served (a commit run inline, a template, a filing
transaction, a garbage collection). The full (generation 2) collections are timed too, through
``gc.callbacks``. When the loop is saturated a late wake-up only says how long one pass over the
ready callbacks took; so each callback the loop runs is timed as well (``Handle._run`` wrapped),
in wall-clock and in CPU time (a busy machine deschedules the process mid-callback: wall-clock
alone blames whatever ran then), and those that spent 5 ms of CPU or more are counted by name: the
stalls' culprits. SIGUSR1 starts a window (clears what was recorded); SIGUSR2 writes the window's
figures as JSON to the file named by ``FEEDBACK_LOOP_PROBE`` and starts a new window.

    python bench/loop_probe.py serve --config FILE    (same arguments as feedback-bot)

The probe costs the loop about a thousand wake-ups a second: compare CPU per request with and
without it, not across.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

TICK = 0.001  # seconds the probe asks to sleep
# Upper bounds (ms) of the lateness histogram's buckets; the last one is open.
BOUNDS_MS = (1, 2, 5, 10, 20, 50)
LONG_CALLBACK = 0.005  # seconds: a callback this long is named in the figures
OURS = ("/bot/", "/web/", "/workers/", "/handlers/", "/storage/", "/console/", "/sources/")


class Probe:
    """Lateness of a 1 ms sleep on the loop, and the time spent in full collections."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.reset()
        gc.callbacks.append(self._gc)

    def reset(self) -> None:
        self.started = time.monotonic()
        self.ticks = 0
        self.buckets = [0] * (len(BOUNDS_MS) + 1)
        self.late_total: float = 0.0  # seconds of lateness beyond 1 ms, summed
        self.worst: list[float] = []  # the longest stalls, ms
        self.gc_started: float | None = None
        self.gc_full: list[float] = []  # ms per generation-2 collection
        self.gc_young = 0.0  # ms in generation 0 and 1 collections
        self.callbacks = 0
        self.callback_seconds = 0.0
        self.callback_cpu = 0.0
        # name -> how many callbacks held the loop >= LONG_CALLBACK of wall-clock time (which
        # counts time the process was not scheduled, on a busy machine) ...
        self.long_wall: Counter[str] = Counter()
        # ... and how many of them spent that much CPU themselves, and their CPU ms
        self.long_cpu: Counter[str] = Counter()
        self.long_cpu_ms: Counter[str] = Counter()

    def timed(self, handle: asyncio.Handle, run: Any) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            run(handle)
        finally:
            cpu, took = time.thread_time() - c0, time.perf_counter() - t0
            self.callbacks += 1
            self.callback_seconds += took
            self.callback_cpu += cpu
            if took >= LONG_CALLBACK:
                name = _name(handle)
                self.long_wall[name] += 1
                if cpu >= LONG_CALLBACK:
                    self.long_cpu[name] += 1
                    self.long_cpu_ms[name] += round(cpu * 1000)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.gc_started = time.perf_counter()
            return
        if self.gc_started is None:
            return
        took = (time.perf_counter() - self.gc_started) * 1000
        self.gc_started = None
        if info.get("generation") == 2:
            self.gc_full.append(took)
        else:
            self.gc_young += took

    def record(self, late: float) -> None:
        ms = late * 1000
        self.ticks += 1
        for i, bound in enumerate(BOUNDS_MS):
            if ms < bound:
                self.buckets[i] += 1
                break
        else:
            self.buckets[-1] += 1
        if ms >= 1:
            self.late_total += late
            self.worst.append(ms)
            if len(self.worst) > 200:
                self.worst = sorted(self.worst, reverse=True)[:20]

    def dump(self) -> None:
        seconds = time.monotonic() - self.started
        figures = {
            "seconds": seconds, "ticks": self.ticks,
            "bounds_ms": list(BOUNDS_MS), "buckets": self.buckets,
            "stalled_ms_per_s": self.late_total * 1000 / max(seconds, 1e-9),
            "worst_ms": sorted(self.worst, reverse=True)[:10],
            "gc_full_ms": self.gc_full, "gc_young_ms": self.gc_young,
            "callbacks": self.callbacks,
            "callback_ms_per_s": self.callback_seconds * 1000 / max(seconds, 1e-9),
            "callback_cpu_ms_per_s": self.callback_cpu * 1000 / max(seconds, 1e-9),
            "long_wall": sum(self.long_wall.values()),
            "long_cpu": [(name, n, round(self.long_cpu_ms[name], 1), self.long_wall[name])
                         for name, n in self.long_cpu.most_common(8)],
        }
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(figures))
        tmp.replace(self.out)  # the bench reads it once it appears whole
        self.reset()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sample ``loop`` from its first pass on. Timer callbacks, not a task: a loop that is
        closed without running its tasks to the end (``serve``'s schema upgrade runs one) would
        leave a pending task to complain at exit."""
        loop.add_signal_handler(signal.SIGUSR1, self.reset)
        loop.add_signal_handler(signal.SIGUSR2, self.dump)
        due = time.perf_counter() + TICK

        def tick() -> None:
            nonlocal due
            self.record(max(time.perf_counter() - due, 0.0))
            due = time.perf_counter() + TICK
            loop.call_later(TICK, tick)

        loop.call_later(TICK, tick)


def _name(handle: asyncio.Handle) -> str:
    """What a callback runs: for a task, the innermost frame of our code in its chain of awaits
    (where it stopped after the callback), else the function."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return getattr(callback, "__qualname__", repr(callback))
    coro: Any = task.get_coro()
    where = getattr(coro, "__qualname__", repr(coro))
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        code = coro.cr_frame.f_code
        if f"/{code.co_filename.rsplit('/', 2)[-2]}/" in OURS:
            where = f"{code.co_qualname}@{code.co_filename.rsplit('/', 1)[-1]}:" \
                    f"{coro.cr_frame.f_lineno}"
        coro = getattr(coro, "cr_await", None)
    return f"task {where}"


def _time_callbacks(probe: Probe) -> None:
    run = asyncio.events.Handle._run
    setattr(asyncio.events.Handle, "_run", lambda handle: probe.timed(handle, run))  # noqa: B010


class _Policy(asyncio.DefaultEventLoopPolicy):
    """Every loop this process creates in its main thread (``serve`` runs on one) is sampled."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self.probe = probe

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        if threading.current_thread() is threading.main_thread():
            self.probe.start(loop)
        return loop


def main() -> int:
    from bot import cli

    probe = Probe(Path(os.environ["FEEDBACK_LOOP_PROBE"]))
    _time_callbacks(probe)
    asyncio.set_event_loop_policy(_Policy(probe))
    return cli.main(sys.argv[1:])


if __name__ == "__main__":  # a prepare process, spawned, imports this file and runs nothing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
