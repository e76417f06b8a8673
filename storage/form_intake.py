"""The web form's batch write: the letters of all waiting POSTs in one transaction.

Written against a synchronous ``Connection`` so that it runs whole in one call of
``Sessions.run_write``: on SQLite in one thread hand-off instead of one per statement (see
there), on PostgreSQL through ``run_sync``. ``bot.web.intake_writer`` gathers the batch and
answers each request after the commit.

The two statements of every batch are compiled by SQLAlchemy once per dialect and batch size
and then run with ``exec_driver_sql``, their values put through the columns' own bind
processors. Executed as Core statements, SQLAlchemy's per-execution work (cache lookup, bind
processing row by row, result set-up) was Python that the writer thread ran while the event
loop serving the form waited for the GIL: measured under 50 concurrent clients, a POST cost
the server about 300-400 µs of CPU that way and about 230-290 µs this way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.engine import Dialect

from storage.clock import utcnow
from storage.models import RawIntake, Submission
from storage.raw_intake import new_rows
from storage.upsert import dialect_module

# Statements are compiled for at most this many rows and run in chunks of it, so that the
# compiled forms kept (one per dialect and size) stay few and small whatever the batch.
CHUNK = 64
_COLUMNS = ("channel", "source_key", "raw", "payload", "message_id", "tracking_no", "received_at",
            "state", "attempts", "error", "processed_at")


def store_letters(conn: Connection, letters: list[dict[str, Any]],
                  draw: Callable[[int], list[str]]) -> dict[str, str | None]:
    """Store form letters; return the tracking number each source key now holds.

    Each letter is a dict with ``source_key``, ``payload`` and ``discard_note``. A letter gets a
    fresh tracking number (``draw(n)`` gives n random ones; none held by a submission); a
    source key stored before keeps its first number (the form sent twice); a letter with a
    ``discard_note`` (the bots' honeypot) is stored as already ``discarded``, with no number."""
    unique: dict[str, dict[str, Any]] = {}
    for letter in letters:
        unique.setdefault(letter["source_key"], letter)  # the first post's payload
    numbered = [k for k, v in unique.items() if v.get("discard_note") is None]
    numbers = dict(zip(numbered, _fresh_numbers(conn, len(numbered), draw), strict=True))
    now = utcnow()
    inputs = []
    for key, letter in unique.items():
        row: dict[str, Any] = {"channel": "web", "source_key": key, "payload": letter["payload"],
                               "tracking_no": numbers.get(key), "received_at": now}
        if letter.get("discard_note") is not None:
            row.update(state="discarded", error=letter["discard_note"], processed_at=now)
        inputs.append(row)
    rows = new_rows(inputs)
    stored: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        sql, order, procs = _insert(conn.dialect, len(chunk))
        values = [(procs[c](r[c]) if procs[c] else r[c]) for r in chunk for c in order]
        stored |= {k for (k,) in conn.exec_driver_sql(sql, tuple(values))}
    earlier = [k for k in unique if k not in stored]
    table = RawIntake.__table__
    held = dict(conn.execute(select(table.c.source_key, table.c.tracking_no)
                             .where(table.c.source_key.in_(earlier))).all()) if earlier else {}
    return {k: numbers.get(k) if k in stored else held.get(k) for k in unique}


def _fresh_numbers(conn: Connection, n: int, draw: Callable[[int], list[str]]) -> list[str]:
    """``n`` distinct tracking numbers that no submission holds (one query per round; a 40-bit
    random number is taken so rarely that a second round is a curiosity)."""
    numbers: list[str] = []
    while len(numbers) < n:
        drawn = list(set(draw(n - len(numbers))) - set(numbers))
        for start in range(0, len(drawn), CHUNK):
            chunk = drawn[start : start + CHUNK]
            taken = {tn for (tn,) in conn.exec_driver_sql(_taken(conn.dialect, len(chunk)),
                                                           tuple(chunk))}
            numbers += [tn for tn in chunk if tn not in taken]
    return numbers


@lru_cache(maxsize=4 * CHUNK)
def _insert(dialect: Dialect, n: int) -> tuple[str, list[str], dict[str, Any]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING source_key for ``n`` rows: the SQL, the column
    of each positional parameter in a row, and each column's bind processor (or None)."""
    table = RawIntake.__table__
    stmt = dialect_module(dialect).insert(table).values(
        [{c: bindparam(f"{c}_{i}") for c in _COLUMNS} for i in range(n)])
    compiled = stmt.on_conflict_do_nothing().returning(table.c.source_key).compile(
        dialect=dialect)
    names = list(compiled.positiontup or ())
    order = [name.rsplit("_", 1)[0] for name in names[: len(_COLUMNS)]]
    assert names == [f"{c}_{i}" for i in range(n) for c in order], "unexpected parameter order"
    procs = {c: table.c[c].type.bind_processor(dialect) for c in _COLUMNS}
    return compiled.string, order, procs


@lru_cache(maxsize=4 * CHUNK)
def _taken(dialect: Dialect, n: int) -> str:
    """SELECT of the tracking numbers among ``n`` that a submission holds."""
    stmt = select(Submission.tracking_no).where(
        Submission.tracking_no.in_([bindparam(f"tn_{i}") for i in range(n)]))
    return stmt.compile(dialect=dialect).string
