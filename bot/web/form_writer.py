"""Group commit for the public form: one writer task stores the letters of all waiting POSTs.

Each POST used to store its raw row in its own transaction. On SQLite every transaction takes the
database's one write lock, so fifty concurrent posts queued on that lock and on the busy handler's
sleeps (p99 over a second), and PostgreSQL paid a commit per letter. Here a POST hands its row to
:class:`FormWriter` and waits; the writer takes every row waiting at that moment, stores them in
ONE transaction (multi-row INSERT … ON CONFLICT DO NOTHING and a query for the tracking numbers,
per 64 letters; on SQLite run whole in one thread hand-off, see ``Sessions.run_write``) and only
after the commit tells each waiting request its tracking number. While a batch commits,
the next one gathers, so a rush costs a few commits, not one per letter. The rule "the raw input is
committed before anything is answered" still holds for every single request.

Duplicates: the form token's nonce is the row's source key. A key already stored (the form sent
twice) keeps its first tracking number, and two posts of one form in the same batch share a row.

Failures: a batch that fails is rolled back and its rows are stored one by one, so one bad row does
not fail the others; a row that still fails raises in its request, which the ``errors`` middleware
answers with the 503 page and Retry-After. Rows that already waited ``RETRY_WITHIN`` seconds are not
retried: a lock timeout or an outage fails every row alike, and retrying each would keep citizens
waiting one timeout per letter.

Shutdown: the web app's cleanup closes the writer after aiohttp has let the running requests finish;
closing stores what it still holds, so no request is left hanging and no row is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from handlers import tracking
from storage import raw_intake

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
MAX_BATCH = 500
RETRY_WITHIN = 5.0  # seconds: a row that waited longer fails with its batch instead of a retry


class WriterClosed(RuntimeError):
    """The service is stopping and takes no more letters (answered 503: try again shortly)."""


@dataclass(frozen=True)
class Entry:
    """One letter to store: its source key (``web:<nonce>``, ``console:<nonce>``), raw payload
    and channel (``web``; ``phone`` or ``post`` for what staff type in).

    ``discard_note`` stores the row as already handled (``discarded``, never filed): the honeypot.
    Such a row gets no tracking number."""

    source_key: str
    payload: dict[str, Any]
    discard_note: str | None = None
    channel: str = "web"


@dataclass
class _Waiting:
    entry: Entry
    future: asyncio.Future[str | None]
    since: float = field(default_factory=time.monotonic)


class FormWriter:
    """Stores form letters in batches; :meth:`store` returns once the letter is committed."""

    def __init__(self, rt: Runtime) -> None:
        self._sessions = rt.sessions
        self._draw = functools.partial(tracking.new_tracking_nos,
                                       prefix=rt.settings.intake.tracking_prefix)
        self._wakeup = rt.intake_wakeup  # set after each commit: the worker files the letters
        self._foreground = rt.foreground  # ...after a quiet moment
        self._queue: list[_Waiting] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests handed over whose letters are not committed yet (queued or being written)."""
        return self._waiting

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="form-writer")

    async def close(self) -> None:
        """Store what is still waiting, then stop; later calls to :meth:`store` fail."""
        self._closing = True
        self._ready.set()
        if self._task is not None:
            await self._task
        self._fail(self._queue, WriterClosed("the form writer has stopped"))
        self._queue.clear()

    async def store(self, entry: Entry) -> str | None:
        """Queue the letter and wait until it is committed (or raise what kept it out).

        Returns the tracking number its source key now holds: a fresh one, or the first post's
        when the same form was sent before; None when that row has none (a bot's, see Entry)."""
        if self._closing or self._task is None or self._task.done():
            raise WriterClosed("the form writer is not running")
        self._foreground.touch()
        waiting = _Waiting(entry, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._ready.set()
        # A request cancelled while waiting cancels only its future: the row is stored all
        # the same (it was received), and the writer skips answering it.
        self._waiting += 1
        try:
            return await waiting.future
        finally:
            self._waiting -= 1

    async def _run(self) -> None:
        try:
            while self._queue or not self._closing:
                if not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                await self._write(batch)
        except BaseException as exc:  # cancelled or a bug: nobody may be left waiting
            self._fail(self._queue, WriterClosed(f"the form writer stopped: {exc!r}"))
            self._queue.clear()
            raise

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            try:
                results = await self._store([w.entry for w in batch])
            except Exception as exc:
                await self._retry_each(batch, exc)
            else:
                self._resolve(batch, results)
        finally:
            # Cancelled mid-commit: whether it landed is unknown, so the answer is "try again"
            # (sending the same form again then shows the number if it did land).
            if any(not w.future.done() for w in batch):
                self._fail(batch, WriterClosed("stopped while storing"))
        self._wakeup.set()

    async def _retry_each(self, batch: list[_Waiting], batch_error: Exception) -> None:
        if len(batch) > 1:
            log.warning("web form: a batch of %d letters failed (%s); storing them one by one",
                        len(batch), batch_error.__class__.__name__)
        for waiting in batch:
            if len(batch) == 1 or time.monotonic() - waiting.since > RETRY_WITHIN:
                self._fail([waiting], batch_error)
                continue
            try:
                results = await self._store([waiting.entry])
            except Exception as exc:
                self._fail([waiting], exc)
            else:
                self._resolve([waiting], results)

    async def _store(self, entries: list[Entry]) -> dict[str, str | None]:
        """One transaction (``storage.raw_intake.store_letters``): fresh tracking numbers, the
        rows inserted (the honeypots' already closed), and the numbers of keys stored before."""
        letters = [{"source_key": e.source_key, "payload": e.payload,
                    "discard_note": e.discard_note, "channel": e.channel} for e in entries]
        return await self._sessions.run_write(raw_intake.store_letters, letters, self._draw,
                                              inline=True)

    @staticmethod
    def _resolve(batch: list[_Waiting], results: dict[str, str | None]) -> None:
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_result(results[waiting.entry.source_key])

    @staticmethod
    def _fail(batch: list[_Waiting], exc: BaseException) -> None:
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_exception(exc)


WRITER: web.AppKey[FormWriter] = web.AppKey("form_writer", FormWriter)


async def running(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the writer runs while the app serves, and is closed after aiohttp has
    let the requests in flight finish (they are answered from the writer, so it outlives them)."""
    writer = app[WRITER]
    writer.start()
    yield
    await writer.close()
