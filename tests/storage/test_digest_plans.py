"""The weekly digest's statements read index ranges on SQLite, never the whole table.

The service never runs ANALYZE on SQLite, so the planner chooses from the schema and the
statement alone: the plans of an empty, freshly migrated database are the plans of a million
rows (bench/digest_build.py measures those). A statement that scans ``submissions`` costs the
digest seconds at that size; the overdue list must read the unanswered cases from their own
index rather than every case with ``resolved_at IS NULL``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.runtime import mail_templates
from handlers.digest import Options, Week, build
from storage.db import make_engine, sessionmaker, upgrade


async def _statements(url: str) -> list[tuple[str, Any]]:
    """Every statement (with its parameters) one build of a week's digest runs."""
    engine = make_engine(url)
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(conn: object, cursor: object, statement: str, parameters: object,
                context: object, executemany: bool) -> None:
        seen.append((statement, parameters))

    try:
        async with sessionmaker(engine)() as s:
            await build(s, Week(2026, 47), Options(), mail_templates(), "feedback@example.gov.cn")
    finally:
        await engine.dispose()
    return seen


def _plans(path: Path, statements: list[tuple[str, Any]]) -> dict[str, list[str]]:
    con = sqlite3.connect(path)
    try:
        return {" ".join(sql.split()): [row[3] for row in con.execute(
            "EXPLAIN QUERY PLAN " + sql, params)] for sql, params in statements
            if sql.lstrip().upper().startswith("SELECT")}
    finally:
        con.close()


async def test_no_digest_statement_scans_the_submissions(tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    plans = _plans(path, await _statements(url))
    assert len(plans) >= 10
    scans = {sql: plan for sql, plan in plans.items()
             if any(step.startswith("SCAN submissions") for step in plan)}
    assert scans == {}
    unanswered = [plan for sql, plan in plans.items()
                  if "resolved_at IS NULL" in sql and "ORDER BY submissions.accepted_at" in sql]
    assert unanswered, "the overdue list's query of the oldest unanswered cases is gone"
    assert all(any("ix_submissions_unanswered" in step for step in plan) for plan in unanswered)
