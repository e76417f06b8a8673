"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, settings, a running service.

Every test that takes ``db_url`` runs twice, once per backend, against real servers: the same
suite must pass on both. PostgreSQL databases are cloned from a template migrated once per session
(procrastinate's habit), which keeps a fresh database per test cheap.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Service, start
from bot.config import Settings
from storage.db import make_engine, sessionmaker, upgrade
from testing.postgres import Postgres
from testing.smtp import SmtpSink

pytest_plugins = ["tests.fixtures_servers", "tests.tiers"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    """Have the shipped model built before any test runs, once, in the controlling process.

    The model is cached by a hash of its code and data, so the first run after either changes
    trains it (10-20 s on a loaded machine). Without this, that training fell inside whichever
    test first classified a letter, and a test that waits for a letter to be filed timed out.
    xdist workers see the cache the controller wrote.
    """
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has built it
        return
    from handlers.classify.store import shipped_scorer

    shipped_scorer()


@pytest.fixture(scope="session")
def pg_template(postgres: Postgres) -> str:
    name = "feedback_template"
    url = postgres.create_database(name)
    upgrade(url)
    return name


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
        upgrade(url)
        return url
    postgres: Postgres = request.getfixturevalue("postgres")
    template = request.getfixturevalue("pg_template")
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}", template=template)


def make_settings(db_url: str, tmp_path: Path, smtp: SmtpSink | None = None,
                  **sections: dict) -> Settings:
    var = tmp_path / "var"
    base: dict = {
        "database": {"url": db_url},
        "web": {"host": "127.0.0.1", "port": 0, "public_url": "http://127.0.0.1:8080",
                "secret_key": "test-secret-key"},
        # The report's own mailbox, at a shared provider where citizens write from too.
        "smtp": {"from_addr": "ntzfwjgdw@163.com", "retry_base_seconds": 0.2},
        # in a thread: a worker process per service start would cost the suite minutes;
        # tests/bot/test_preparer.py runs the pool
        "intake": {"attachments_dir": str(var / "attachments"), "retry_base_seconds": 0.2,
                   "prepare_processes": 0},
        "classifier": {"model_dir": str(var / "models")},
        "maildir": {"path": str(var / "maildir")},
        "var_dir": str(var),
    }
    if smtp is not None:
        base["smtp"].update({"host": "127.0.0.1", "port": smtp.port})
    for key, values in sections.items():
        base.setdefault(key, {}).update(values)
    return Settings(**base)


@pytest.fixture
async def db(db_url: str):  # type: ignore[no-untyped-def]
    """Sessions on the migrated test database, for storage-level tests (no service running)."""
    engine = make_engine(db_url)
    sessions = sessionmaker(engine)
    try:
        yield sessions
    finally:
        await sessions.close()
        await engine.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    return make_settings(db_url, tmp_path, smtp_sink)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    svc = await start(settings)
    try:
        yield svc
    finally:
        await svc.stop()
