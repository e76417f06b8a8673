"""The web form's batch write: the letters of all waiting POSTs in one transaction.

Written against a synchronous ``Connection`` so that it runs whole in one call of
``Sessions.run_write``: on SQLite in one thread hand-off instead of one per statement (see
there), on PostgreSQL through ``run_sync``. ``bot.web.intake_writer`` gathers the batch and
answers each request after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from storage.intake import new_rows
from storage.models import RawIntake, Submission
from storage.upsert import dialect_module


def store_letters(conn: Connection, letters: list[dict[str, Any]],
                  draw: Callable[[int], list[str]]) -> dict[str, str | None]:
    """Store form letters; return the tracking number each source key now holds.

    Each letter is a dict with ``source_key``, ``payload`` and ``discard_note``. A letter gets a
    fresh tracking number (``draw(n)`` gives n random ones; none held by a submission); a source key stored
    before keeps its first number (the form sent twice); a letter with a ``discard_note`` (the
    bots' honeypot) is stored as already ``discarded``, with no number."""
    unique: dict[str, dict[str, Any]] = {}
    for letter in letters:
        unique.setdefault(letter["source_key"], letter)  # the first post's payload
    numbered = [k for k, v in unique.items() if v.get("discard_note") is None]
    numbers = dict(zip(numbered, _fresh_numbers(conn, len(numbered), draw), strict=True))
    inputs = []
    for key, letter in unique.items():
        row: dict[str, Any] = {"channel": "web", "source_key": key, "payload": letter["payload"],
                               "tracking_no": numbers.get(key)}
        if letter.get("discard_note") is not None:
            row.update(state="discarded", error=letter["discard_note"])
        inputs.append(row)
    rows = new_rows(inputs)
    for row in rows:
        if row["state"] == "discarded":
            row["processed_at"] = row["received_at"]
    table = RawIntake.__table__
    stmt = dialect_module(conn).insert(table).on_conflict_do_nothing()
    stored = {k for k, _ in conn.execute(stmt.returning(table.c.source_key, table.c.id), rows)}
    earlier = [k for k in unique if k not in stored]
    held = dict(conn.execute(select(table.c.source_key, table.c.tracking_no)
                             .where(table.c.source_key.in_(earlier))).all()) if earlier else {}
    return {k: numbers.get(k) if k in stored else held.get(k) for k in unique}


def _fresh_numbers(conn: Connection, n: int, draw: Callable[[int], list[str]]) -> list[str]:
    """``n`` distinct tracking numbers that no submission holds (one query per round; a 40-bit
    random number is taken so rarely that a second round is a curiosity)."""
    numbers: list[str] = []
    while len(numbers) < n:
        drawn = set(draw(n - len(numbers))) - set(numbers)
        taken = set(conn.execute(select(Submission.tracking_no)
                                 .where(Submission.tracking_no.in_(drawn))).scalars())
        numbers += [tn for tn in drawn if tn not in taken]
    return numbers
