"""Migration 0005: existing letters keep exactly the confidentiality they had (kind report),
attributed to staff where a staff label made them a report; the downgrade removes the columns."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from storage.db import alembic_config, make_engine, upgrade, utcnow
from tests.storage.test_search import _fresh_url

ROWS = {  # tracking number → kind before the migration
    "FK-OLD-0001": "report",  # the classifier said report
    "FK-OLD-0002": "report",  # staff relabelled it a report
    "FK-OLD-0003": "complaint",
    "FK-OLD-0004": None,
}


async def _run(url: str, sql: str, params: dict | None = None) -> list:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_backfill_restricts_old_reports_and_downgrade_drops_the_columns(
        request: pytest.FixtureRequest, backend: str, tmp_path: Path):
    url = _fresh_url(request, backend, tmp_path)
    upgrade(url, "0004_lookup_indexes")
    for n, (tn, kind) in enumerate(ROWS.items()):
        await _run(url, "INSERT INTO submissions (tracking_no, channel, subject, text, category, "
                        "kind, needs_review, status, received_at, created_at, updated_at) VALUES "
                        "(:tn, 'web', '', '举报某所长', '7', :kind, false, 'new', :at, :at, :at)",
                   {"tn": tn, "kind": kind, "at": utcnow() - timedelta(minutes=n)})
    await _run(url, "INSERT INTO labels (submission_id, category, kind, at) SELECT id, '7', "
                    "'report', :at FROM submissions WHERE tracking_no = 'FK-OLD-0002'",
               {"at": utcnow()})
    upgrade(url)
    got = {tn: (bool(r), by) for tn, r, by in await _run(
        url, "SELECT tracking_no, restricted, restricted_by FROM submissions")}
    assert got == {"FK-OLD-0001": (True, "classifier"), "FK-OLD-0002": (True, "staff"),
                   "FK-OLD-0003": (False, None), "FK-OLD-0004": (False, None)}
    # A row written without the column (an older process during a rolling start) is open.
    await _run(url, "INSERT INTO submissions (tracking_no, channel, subject, text, category, "
                    "needs_review, status, received_at, created_at, updated_at) VALUES "
                    "('FK-NEW-0001', 'web', '', '', '1', false, 'new', :at, :at, :at)",
               {"at": utcnow()})
    assert await _run(url, "SELECT restricted FROM submissions "
                           "WHERE tracking_no = 'FK-NEW-0001'") == [(False,)]

    command.downgrade(alembic_config(url), "0004_lookup_indexes")
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("submissions")})
    finally:
        await engine.dispose()
    assert "restricted" not in columns and "restricted_by" not in columns
    assert len(await _run(url, "SELECT id FROM submissions")) == 5
    upgrade(url)  # and up again
