"""Database engine, sessions and schema upgrades.

One engine per process, created from the configured URL. SQLite is the embedded default and is
set up for a service with several writers: WAL journal (readers never block the writer), foreign
keys on, and a busy timeout so that a briefly locked database makes a writer wait, not fail.
PostgreSQL (asyncpg) needs nothing special.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_MS = 10_000  # also PostgreSQL's lock_timeout


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, **kwargs: object) -> AsyncEngine:
    """Create the engine; for SQLite also the directory that holds the file."""
    if is_sqlite(url):
        db = make_url(url).database
        if db and db != ":memory:":
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


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema up to date (blocking; run it before the event loop or in a thread)."""
    if is_sqlite(url):
        db = make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
