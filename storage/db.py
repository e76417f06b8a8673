"""Database engine, sessions and schema upgrades.

One engine per process, created from the configured URL. SQLite is the embedded default and is
set up for a service with several writers: WAL journal (readers never block the writer), foreign
keys on, and a busy timeout so that a briefly locked database makes a writer wait, not fail.
PostgreSQL (asyncpg) needs nothing special.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from storage.clock import utcnow  # noqa: F401 - re-exported: storage.db.utcnow

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_MS = 10_000  # also PostgreSQL's lock_timeout
INLINE_BUSY_MS = 20  # run_write(inline=True): the event loop waits no longer for a lock


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> str | None:
    """The file of a SQLite database; None for an in-memory one and for other databases."""
    u = make_url(url)
    db = u.database if u.get_backend_name() == "sqlite" else None
    return db if db and db != ":memory:" else None


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. ``AsyncSession.execute`` is typed to return a
    ``Result``; for such a statement it is a ``CursorResult``, which alone has ``rowcount``."""
    return cast(CursorResult[Any], result).rowcount


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry,
                    busy_ms: int = SQLITE_BUSY_MS) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    # WAL is a property of the file, kept once set; setting it again takes a lock, which
    # another process's open write transaction would hold up.
    cur.execute("PRAGMA journal_mode")
    if str((cur.fetchone() or ("",))[0]).lower() != "wal":
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_inline_pragmas(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    """The event loop's own connection (``Sessions.run_write(inline=True)``): a short wait
    for another process's lock, and no WAL checkpoints."""
    _sqlite_pragmas(dbapi_conn, record, busy_ms=INLINE_BUSY_MS)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def make_engine(url: str, **kwargs: object) -> AsyncEngine:
    """Create the engine; for SQLite also the directory that holds the file.

    ``hide_parameters``: a failed statement's exception otherwise carries its bound values, a
    letter's text and its writer's address among them, into every log line and stored
    traceback that quotes it (a 举报 included).
    """
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        if db := sqlite_file(url):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    # Like SQLite's busy timeout: a lock held too long makes a statement fail (the web form then
    # answers 503 with Retry-After and the intake retries) instead of hanging the request.
    kwargs.setdefault("connect_args", {"server_settings": {"lock_timeout": f"{SQLITE_BUSY_MS}ms"}})
    return create_async_engine(url, **kwargs)


async def refresh_statistics(engine: AsyncEngine) -> bool:
    """On SQLite, ANALYZE: the query planner's row counts per index (about 1 s at a million
    letters). Without them SQLite guesses, and for the console's filtered newest-first pages it
    guessed a sort of 100,000 rows (0.1–0.8 s) instead of a walk down the received_at index (1–50
    ms). PostgreSQL keeps its own statistics (autovacuum). Returns whether it ran."""
    if engine.dialect.name != "sqlite":
        return False
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    return True


class _Turns:
    """SQLite's one write slot in this process, handed on in order, urgent writers first.

    ``asyncio.Lock`` serves strictly first come, first served, and has no priority, hence these
    lines. The web form's batch (``run_write``) is urgent: fifty citizens wait for its commit,
    while the workers' transactions (filing, the outbox marking each message sent) can wait a
    moment without anyone noticing. Behind a queue of them, a POST waited up to 0.7 s."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    async def acquire(self, urgent: bool) -> None:
        if not self._busy:
            self._busy = True  # nobody waits while the slot is free: see release
            return
        queue = self._waiting[0 if urgent else 1]
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the slot just as it was cancelled: pass it on
            elif turn in queue:  # (release drops a cancelled one it meets)
                queue.remove(turn)
            raise

    def release(self) -> None:
        """Hand the slot to the next waiter, urgent ones first, or free it."""
        for queue in self._waiting:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._busy = False


class Sessions(async_sessionmaker[AsyncSession]):
    """On SQLite, write transactions of this process take turns (urgent ones first).

    SQLite lets one transaction write at a time. Without the lock, a second writer in the same
    process (the IMAP poller storing a batch while the intake worker files one) finds the
    database locked and SQLite's busy handler makes it sleep and retry, in steps of up to 100
    ms: on a burst of mail the writers spent more time asleep than working. With the lock they
    queue in order, and each starts the moment the previous one commits. Other processes
    still meet the busy handler, as before. Waiting longer than the busy timeout raises
    TimeoutError (the web form answers 503, a worker retries). A nested ``begin()`` in the
    same task would wait for itself: it raises at once instead.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self._engine = engine
        self._writing: _Turns | None = _Turns() if engine.dialect.name == "sqlite" else None
        self._writer: asyncio.Task[object] | None = None
        self._sync: Engine | None = None  # run_write's thread's
        self._loop_sync: Engine | None = None  # the event loop thread's (inline)
        self._thread: ThreadPoolExecutor | None = None

    def begin(self) -> AbstractAsyncContextManager[AsyncSession]:  # type: ignore[override]
        if self._writing is None:
            return super().begin()
        return self._serialised()

    @asynccontextmanager
    async def _turn(self, urgent: bool = False) -> AsyncIterator[None]:
        """This process's turn to write (SQLite); ``urgent`` goes before the others waiting."""
        assert self._writing is not None
        me = asyncio.current_task()
        if me is not None and self._writer is me:
            raise RuntimeError("a write transaction was opened inside another one")
        async with asyncio.timeout(SQLITE_BUSY_MS / 1000):
            await self._writing.acquire(urgent)
        self._writer = me
        try:
            yield
        finally:
            self._writer = None
            self._writing.release()

    @asynccontextmanager
    async def _serialised(self) -> AsyncIterator[AsyncSession]:
        async with self._turn(), super().begin() as session:
            yield session

    async def run_write(self, fn: Callable[..., T], *args: Any, urgent: bool = True,
                        inline: bool = False, again_in_thread: bool = True) -> T:
        """``fn(connection, *args)`` in one write transaction, committed when it returns.

        For a hot write made of a few statements (the web form's batch). Through aiosqlite each
        statement and each fetch is a hand-off to aiosqlite's thread and back; on a SQLite file
        ``fn`` instead runs whole in one thread of ours on a plain pysqlite connection, which
        measured 1.5 ms of CPU for a batch of 20 form letters against 2.5-2.9 ms. Elsewhere
        (PostgreSQL, an in-memory SQLite) it runs through ``run_sync`` on the async driver.
        ``urgent``: someone waits for it, so on SQLite it takes the next turn to write (see
        ``_Turns``).

        ``inline``: on a SQLite file, run ``fn`` on the event loop's own thread, blocking it for
        the transaction's few milliseconds of CPU. Meant for short transactions while the loop
        is busy: a thread then gets the interpreter back only when the loop lets go of it (every
        few milliseconds), after each statement, so under a rush of form posts a batch of a few
        statements took 15-40 ms instead of 1-2 ms, and its POSTs waited as long. Inline, the
        turn (see ``_Turns``) means no writer of this process holds SQLite's lock; another
        process's (a CLI command's) is waited for at most ``INLINE_BUSY_MS``, then ``fn`` runs
        again in the thread as usual (``again_in_thread``; else the lock's OperationalError is
        raised, for an ``fn`` whose effects outside the database must be undone first). The
        loop's connection never checkpoints the WAL (a checkpoint writes the database file
        out): the other connections' commits do."""
        if self._writing is None or not sqlite_file(self._engine.url):
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn, *args)
        async with self._turn(urgent=urgent):
            if inline:
                try:
                    return self._inline(fn, args)
                except OperationalError as exc:
                    if not again_in_thread or "locked" not in str(exc):
                        raise
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")
            done = asyncio.get_running_loop().run_in_executor(
                self._thread, self._in_thread, fn, args)
            try:
                return await asyncio.shield(done)
            finally:
                if not done.done():  # cancelled: the turn lasts until the thread has finished
                    await asyncio.wait([done])

    async def run_transaction(self, work: Callable[[AsyncSession], Awaitable[T]],
                              inline: bool = False) -> T:
        """``await work(session)`` in one write transaction, committed when it returns; a
        worker's turn, not an urgent one.

        On a SQLite file the whole transaction is one call into ``run_write``'s thread:
        ``work`` gets a session whose calls run at once on that thread's connection
        (:class:`_AtOnce`), so its coroutine never waits for the event loop. Through aiosqlite
        the intake's filing transaction was some 30 hand-offs to the driver's thread and back,
        each waiting its turn among the web requests' callbacks: under a rush of form posts one
        transaction held the write slot for hundreds of milliseconds, and every POST waited
        for it. Its CPU (the repeat matching, the rows) also ran on the event loop; in the
        thread it shares the interpreter with the loop instead of blocking it. ``work`` must
        await nothing but the session's calls (anything else raises RuntimeError, and the
        transaction is rolled back). Elsewhere (PostgreSQL, an in-memory SQLite) it runs on an
        ``AsyncSession`` as ``begin()`` gives it. ``inline``: see ``run_write``; a lock held by
        another process raises there (the filing's batch is then filed one by one, its
        in-memory effects undone)."""
        if self._writing is None or not sqlite_file(self._engine.url):
            async with self.begin() as session:
                return await work(session)
        return await self.run_write(_at_once, work, urgent=False, inline=inline,
                                    again_in_thread=False)

    def _in_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._sync is None:
            self._sync = self._plain_engine(_sqlite_pragmas)
        with self._sync.begin() as conn:
            return fn(conn, *args)

    def _inline(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._loop_sync is None:
            self._loop_sync = self._plain_engine(_sqlite_inline_pragmas,
                                                 connect_args={"timeout": INLINE_BUSY_MS / 1000})
        with self._loop_sync.begin() as conn:
            return fn(conn, *args)

    def _plain_engine(self, pragmas: Callable[[DBAPIConnection, ConnectionPoolEntry], None],
                      **kwargs: Any) -> Engine:
        """A pysqlite engine on the async engine's file, with its settings (hide_parameters:
        see make_engine) and ``pragmas`` run on each new connection."""
        engine = create_engine(self._engine.url.set(drivername="sqlite"),
                               hide_parameters=self._engine.sync_engine.hide_parameters, **kwargs)
        event.listen(engine, "connect", pragmas)
        return engine

    async def close(self) -> None:
        """Release the synchronous engines and the thread, if ``run_write`` made them."""
        if self._loop_sync is not None:
            self._loop_sync.dispose()
            self._loop_sync = None
        if self._thread is not None:
            thread, self._thread = self._thread, None
            if self._sync is not None:
                await asyncio.get_running_loop().run_in_executor(thread, self._sync.dispose)
            thread.shutdown(wait=False)


class _AtOnce:
    """The part of ``AsyncSession`` that the storage functions use, over a synchronous
    ``Session`` on a plain pysqlite connection: every call is done when it returns, so a
    coroutine that awaits only these never suspends (see ``Sessions.run_transaction``).
    SQLAlchemy has no such adapter: its ``AsyncSession`` needs an async driver."""

    def __init__(self, session: Session) -> None:
        self.sync_session = session

    @property
    def bind(self) -> Any:
        return self.sync_session.bind

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalars(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(*args, **kwargs)

    def add(self, instance: object) -> None:
        self.sync_session.add(instance)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        self.sync_session.flush(*args, **kwargs)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.sync_session, *args, **kwargs)


def _at_once(conn: Connection, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` whole on ``conn``'s transaction (in ``run_write``'s thread)."""
    with Session(bind=conn, expire_on_commit=False) as session:
        coro = cast(Coroutine[Any, Any, T], work(cast(AsyncSession, _AtOnce(session))))
        try:
            coro.send(None)
        except StopIteration as done:
            session.flush()
            return cast(T, done.value)
        coro.close()
        raise RuntimeError("a transaction run at once waited for the event loop")


def sessionmaker(engine: AsyncEngine) -> Sessions:
    return Sessions(engine)


def alembic_config(url: str) -> Config:
    # Imported here, not at the top: Alembic and its Mako templates are 11 MB that a process
    # which never migrates (the intake's prepare processes) should not carry.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema up to date (blocking; run it before the event loop or in a thread)."""
    if db := sqlite_file(url):
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
