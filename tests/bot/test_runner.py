"""The worker runner: backoff after failing rounds, state on /healthz, stop on request, and the
two kinds of error in the log (the sender's fault at info; ours at error, without the letter's
personal data). The worker here is the test's own, fed its rounds' outcomes one by one; the
runtime, the web app and /healthz are the real service's."""

from __future__ import annotations

import asyncio
import itertools
import logging

import aiohttp
import pytest

from bot.app import Service, start
from bot.config import Settings
from bot.workers import runner
from bot.workers.runner import Next, Worker
from handlers.errors import SenderFault

ADDRESS = "li.xiaoming@163.com"
PHONE = "13912345678"


class Scripted(Worker):
    """A worker whose rounds do what the test puts in its queue: raise an error or return."""

    name = "scripted"
    retry_after = 0.05
    max_backoff = 0.2

    def __init__(self) -> None:
        self.outcomes: asyncio.Queue[Next | Exception] = asyncio.Queue()
        self.started: list[float] = []
        self.called = asyncio.Event()
        self.closed = False
        self.wakeup = asyncio.Event()

    async def round(self) -> Next:
        self.started.append(asyncio.get_running_loop().time())
        self.called.set()
        outcome = await self.outcomes.get()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def close(self) -> None:
        self.closed = True

    async def rounds(self, n: int, timeout: float = 10.0) -> None:
        """Wait until the n-th round has started."""
        async with asyncio.timeout(timeout):
            while len(self.started) < n:
                self.called.clear()
                await self.called.wait()


@pytest.fixture
async def idle_service(settings: Settings):  # type: ignore[no-untyped-def]
    """The real service without its own workers: only the test's worker runs."""
    svc = await start(settings, workers=False)
    try:
        yield svc
    finally:
        await svc.stop()


async def _health(service: Service) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{service.base_url}/healthz") as r:
        assert r.status == 200
        return await r.json()


async def test_failing_rounds_back_off_show_on_healthz_and_stop_ends_the_wait(
        idle_service: Service):
    rt = idle_service.runtime
    worker = Scripted()
    for _ in range(3):
        worker.outcomes.put_nowait(ConnectionResetError("relay went away"))
    worker.outcomes.put_nowait(Next(3600.0))
    task = asyncio.create_task(runner.run(rt, worker))
    try:
        await worker.rounds(4)
        gaps = [b - a for a, b in itertools.pairwise(worker.started)]
        # 0.05 s, doubled for each failure in a row, at most 0.2 s
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2, gaps
        async with asyncio.timeout(5):  # the fourth round returns: next in an hour
            while rt.worker("scripted").state != "running":
                await asyncio.sleep(0.01)
        health = await _health(idle_service)
        assert health["workers"]["scripted"]["state"] == "running"
        assert health["workers"]["scripted"]["last_success"]

        worker.wakeup.set()  # new work: the hour's wait ends at once
        await worker.rounds(5)
        worker.outcomes.put_nowait(OSError("database is locked"))
        await worker.rounds(6)  # failed, backed off, and waits in its next round
        health = await _health(idle_service)
        assert health["status"] == "degraded"
        assert health["workers"]["scripted"] == {
            "state": "error", "last_error": "OSError",
            "last_success": health["workers"]["scripted"]["last_success"]}
        assert "scripted: OSError" in health["reasons"]

        worker.outcomes.put_nowait(Next(3600.0))  # done, back in an hour...
        rt.request_stop()  # ...but the service stops: the wait ends, the worker is closed
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
    assert worker.closed
    assert len(worker.started) == 6  # no round after the stop


async def test_sender_fault_is_logged_at_info_ours_at_error_without_personal_data(
        idle_service: Service, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot.workers.runner")
    rt = idle_service.runtime
    worker = Scripted()
    worker.outcomes.put_nowait(SenderFault(f"the relay refused <{ADDRESS}>: user unknown"))
    worker.outcomes.put_nowait(ValueError(f"cannot file the letter of {ADDRESS}, tel {PHONE}"))
    task = asyncio.create_task(runner.run(rt, worker))
    try:
        await worker.rounds(3)
        mine = [r for r in caplog.records if r.name == "bot.workers.runner"]
        senders = [r for r in mine if r.levelno == logging.INFO]
        ours = [r for r in mine if r.levelno == logging.ERROR]
        assert len(senders) == 1 and "user unknown" in senders[0].getMessage()
        assert len(ours) == 1
        text = ours[0].getMessage()
        assert "ValueError" in text and "cannot file the letter" in text
        assert "Traceback" in text and "in round" in text  # where it happened, for us
        assert not ours[0].exc_info  # a traceback printed by logging would not be redacted
        for record in mine:
            logged = record.getMessage()
            assert ADDRESS not in logged and PHONE not in logged
        assert rt.worker("scripted").state == "error"
        assert rt.metrics.registry.get_sample_value(
            "feedback_errors_total", {"where": "scripted"}) == 2
        worker.outcomes.put_nowait(Next(3600.0))
        rt.request_stop()
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
