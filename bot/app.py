"""Composition root of ``feedback-bot serve``: settings → database → workers + web app.

Every long-running part is a task in one event loop: the web server, the intake worker, the
outbox sender, and (when configured) the mail sources and the digest scheduler. The workers run
on one runner (``bot/workers/runner.py``), which logs a failing round and retries it with backoff;
SIGTERM/SIGINT stop everything cleanly.
:func:`start` is also what the integration tests use, so they run the real assembly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot import parts
from bot.config import Settings
from bot.runtime import Runtime, freeze_heap, limit_malloc_arenas
from bot.web.app import make_app
from bot.workers import intake, maintenance, outbox, reminders, urgent
from storage.db import upgrade_async

log = logging.getLogger(__name__)
Task = Callable[[Runtime], Coroutine[Any, Any, None]]  # create_task takes a coroutine
OPTIONAL_TASKS = (
    ("imap", "bot.sources.imap"),
    ("maildir", "bot.sources.maildir"),
    ("digest", "bot.workers.digest"),
)


def background_tasks(settings: Settings) -> dict[str, Task]:
    """The workers this configuration asks for (a module's ``task_for`` may decline)."""
    tasks: dict[str, Task] = {"intake": intake.run, "outbox": outbox.run,
                              "maintenance": maintenance.run, "reminders": reminders.run,
                              "urgent": urgent.run}
    name_of = {module: name for name, module in OPTIONAL_TASKS}
    for mod in parts.present(tuple(name_of)):
        task = mod.task_for(settings)
        if task is not None:
            tasks[name_of[mod.__name__]] = task
    return tasks


@dataclass
class Service:
    """A running service: runtime, web server and background tasks."""

    runtime: Runtime
    runner: web.AppRunner
    port: int
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.runtime.settings.web.host}:{self.port}"

    async def stop(self, grace: float = 5.0) -> None:
        """Stop serving, let the workers finish their step, then cancel what is left.

        Workers watch ``runtime.stopping`` and return at a safe point; only a task still running
        after ``grace`` seconds is cancelled, and one that ignores even that is left behind with a
        warning rather than hanging the shutdown (a cancelled database call can do that).
        """
        await self.runner.cleanup()
        self.runtime.request_stop()
        tasks = [t for t in self.tasks if not t.done()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                _done, stuck = await asyncio.wait(pending, timeout=grace)
                for t in stuck:
                    log.warning("task %s did not stop", t.get_name())
        await self.runtime.close()


# The schema upgrade as a child process runs it: the URL read from stdin (a password in it
# must not show in the process list).
_UPGRADE = "import sys; from storage.db import upgrade; upgrade(sys.stdin.readline().strip())"


async def upgrade_in_child(url: str) -> None:
    """Bring the schema up to date in a short-lived child process. Alembic's command module
    brings its autogenerate package, Mako and Pygments, and reading the migration scripts
    compiles them: 8 MB that ``serve`` carried for as long as it ran, for something done once
    at start. Its output goes where ours goes; a failed upgrade stops the start."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _UPGRADE,
                                                stdin=subprocess.PIPE)
    await proc.communicate(url.encode() + b"\n")
    if proc.returncode:
        raise RuntimeError(f"the database schema upgrade failed (exit {proc.returncode})")


async def start(settings: Settings, *, workers: bool = True,
                settle: Callable[[], None] | None = None,
                migrate: Callable[[str], Awaitable[None]] = upgrade_async) -> Service:
    """The service, serving and (``workers``) working; ``settle``: see ``Runtime.settle``;
    ``migrate``: how the schema is brought up to date (``serve``: :func:`upgrade_in_child`)."""
    await migrate(settings.database.url)
    rt = Runtime.create(settings)
    if settle is not None:
        rt.settle = settle
    runner = web.AppRunner(make_app(rt), access_log=None, shutdown_timeout=3.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.web.host, settings.web.port)
    await site.start()
    port = runner.addresses[0][1]
    service = Service(rt, runner, port)
    if workers:
        service.tasks = [asyncio.create_task(fn(rt), name=name)
                         for name, fn in background_tasks(settings).items()]
    log.info("serving on http://%s:%s", settings.web.host, port)
    return service


async def serve(settings: Settings) -> None:
    limit_malloc_arenas()
    service = await start(settings, settle=freeze_heap, migrate=upgrade_in_child)
    freeze_heap()  # modules, templates, settings, the engine
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await service.stop()
