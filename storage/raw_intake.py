"""Raw intake rows: every input exactly as it arrived, and how far it got.

A source (IMAP, Maildir, web form, console entry, import) stores its input here first and commits;
only then is the input acknowledged to its origin (IMAP flag and move, Maildir rename, HTTP
answer). The intake worker then runs the pipeline on rows that are ``pending`` (or ``held`` after
an error) until they are ``done``, or ``quarantined`` for staff after too many failures.

This module is the one writer of new rows, in two forms built from one definition of a new row
(``RawIntake.NEW_ROW``, beside the model): ``add``/``add_many`` in an async session (mail
sources, console entry), and ``store_letters``, the web form's whole batch as one synchronous
unit of work (see there why). It also draws the tracking numbers no letter holds yet
(``fresh_tracking_nos``), for the form and the pipeline's store step alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, union_all, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import BindParameter, UpdateBase

from storage.db import utcnow
from storage.models import RawIntake, Submission
from storage.upsert import Bulk, bind_processor, dialect_module, insert_ignore_many

OPEN_STATES = ("pending", "held")
RETRY_BASE = timedelta(seconds=30)

NEW_ROW = RawIntake.NEW_ROW  # the one definition of a new row's columns (storage/models.py)
# The web form's statements are compiled for at most this many rows (or tracking numbers) and
# run in chunks of it, so that the compiled forms kept (per dialect and size) stay few and small.
CHUNK = 64

Draw = Callable[[int], list[str]]  # n random tracking numbers (handlers.tracking.new_tracking_nos)


def new_rows(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete rows from ``NEW_ROW`` and each input's own values (a dict of its columns), as
    an INSERT of many rows needs them: every row names every column."""
    now = utcnow()
    rows = []
    for given in inputs:
        row = {**NEW_ROW, **given}
        if len(row) != len(NEW_ROW) or row["channel"] is None or row["source_key"] is None:
            raise TypeError(f"a raw_intake row needs channel and source_key and takes only the "
                            f"columns of NEW_ROW, not {sorted(given)}")
        if row["received_at"] is None:
            row["received_at"] = now
        rows.append(row)
    return rows


async def add(session: AsyncSession, **values: Any) -> int | None:
    """Store one input (``values``: its columns of ``NEW_ROW``); return its id, or None when
    this source key was stored before."""
    return (await add_many(session, [values])).get(values.get("source_key", ""))


async def add_many(session: AsyncSession, inputs: list[dict[str, Any]]) -> dict[str, int]:
    """Store many inputs in one statement (a batch of fetched mail); each dict holds ``add``'s
    keyword arguments. Returns the new id by source key; a source key that is missing from the
    result was stored before."""
    return await insert_ignore_many(session, RawIntake, new_rows(inputs), "source_key")


def store_letters(conn: Connection, letters: list[dict[str, Any]],
                  draw: Draw) -> dict[str, str | None]:
    """The web form's batch (``bot.web.form_writer``): store the letters of all waiting POSTs
    in one transaction; return the tracking number each source key now holds.

    Each letter is a dict with ``source_key``, ``payload``, ``discard_note`` and optionally
    ``channel`` (default ``web``; staff entry stores ``phone`` and ``post``). A letter gets a
    fresh tracking number; a source key stored before keeps its first number (the form sent
    twice); a letter with a ``discard_note`` (the bots' honeypot) is stored as already
    ``discarded``, with no number.

    Written against a synchronous ``Connection`` so that it runs whole in one call of
    ``Sessions.run_write``: on SQLite in one thread hand-off instead of one per statement (see
    there), on PostgreSQL through ``run_sync``. Its statements are compiled by SQLAlchemy once
    per dialect and batch size and run with ``exec_driver_sql``, their values put through the
    columns' own bind processors. Executed as Core statements, SQLAlchemy's per-execution work
    (cache lookup, bind processing row by row, result set-up) was Python that the writer thread
    ran while the event loop serving the form waited for the GIL: measured under 50 concurrent
    clients, a POST cost the server about 300-400 µs of CPU that way and 230-290 µs this way."""
    unique: dict[str, dict[str, Any]] = {}
    for letter in letters:
        unique.setdefault(letter["source_key"], letter)  # the first post's payload
    numbered = [k for k, v in unique.items() if v.get("discard_note") is None]
    numbers = dict(zip(numbered, fresh_tracking_nos(conn, draw(len(numbered)), draw),
                       strict=True))
    now = utcnow()
    inputs = []
    for key, letter in unique.items():
        row: dict[str, Any] = {"channel": letter.get("channel", "web"), "source_key": key,
                               "payload": letter["payload"],
                               "tracking_no": numbers.get(key), "received_at": now}
        if letter.get("discard_note") is not None:
            row.update(state="discarded", error=letter["discard_note"], processed_at=now)
        inputs.append(row)
    rows = new_rows(inputs)
    stored: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        sql, order, procs = _insert_sql(conn.dialect, len(chunk))
        values = [(procs[c](r[c]) if procs[c] else r[c]) for r in chunk for c in order]
        stored |= {k for (k,) in conn.exec_driver_sql(sql, tuple(values))}
    earlier = [k for k in unique if k not in stored]
    table = RawIntake.__table__
    held = dict(conn.execute(select(table.c.source_key, table.c.tracking_no)
                             .where(table.c.source_key.in_(earlier))).all()) if earlier else {}
    return {k: numbers.get(k) if k in stored else held.get(k) for k in unique}


def fresh_tracking_nos(conn: Connection, drawn: list[str], draw: Draw) -> list[str]:
    """``drawn`` with every number that is not free replaced by a new one from ``draw``: one
    that a submission holds, that a raw row holds (a web letter waiting to be filed, or
    quarantined for staff to requeue, has its number already) or that came earlier in the
    list. A tracking number belongs to one letter. Numbers that were free stay where they are
    (the store step drafted the acknowledgement with them). One query per ``CHUNK`` numbers
    and round: 40 random bits are taken so rarely that a second round is a curiosity.

    The one draw of tracking numbers: the web form's batch calls it in its transaction, the
    store step through ``fresh_tracking_nos_in``."""
    numbers = list(drawn)
    kept: set[str] = set()
    todo = list(range(len(numbers)))
    while todo:
        taken = _held(conn, [numbers[i] for i in todo])
        again = []
        for i in todo:
            if numbers[i] in taken or numbers[i] in kept:
                again.append(i)
            else:
                kept.add(numbers[i])
        for i, tn in zip(again, draw(len(again)), strict=True):
            numbers[i] = tn
        todo = again
    return numbers


async def fresh_tracking_nos_in(session: AsyncSession, drawn: list[str], draw: Draw
                                ) -> list[str]:
    """``fresh_tracking_nos`` in an async session's transaction (the pipeline's store step)."""
    if not drawn:
        return []
    return await session.run_sync(lambda s: fresh_tracking_nos(s.connection(), drawn, draw))


def _held(conn: Connection, numbers: list[str]) -> set[str]:
    """Which of ``numbers`` a submission or a raw row holds, each by its index. A raw row in
    any state: a filed row's number is its submission's anyway, and the state index would lead
    the lookup through every unfiled row."""
    held: set[str] = set()
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        sql, order = _held_sql(conn.dialect, len(chunk))
        values = {f"tn_{i}": tn for i, tn in enumerate(chunk)}
        held |= {tn for (tn,) in conn.exec_driver_sql(sql, tuple(values[n] for n in order))}
    return held


@lru_cache(maxsize=4 * CHUNK)
def _insert_sql(dialect: Dialect, n: int) -> tuple[str, list[str], dict[str, Any]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING source_key for ``n`` rows of ``NEW_ROW``'s
    columns: the SQL, the column of each positional parameter in a row, and each column's bind
    processor (or None)."""
    table = RawIntake.__table__
    stmt = dialect_module(dialect).insert(table).values(
        [{c: bindparam(f"{c}_{i}") for c in NEW_ROW} for i in range(n)])
    compiled = stmt.on_conflict_do_nothing().returning(table.c.source_key).compile(
        dialect=dialect)
    names = list(compiled.positiontup or ())
    order = [name.rsplit("_", 1)[0] for name in names[: len(NEW_ROW)]]
    assert names == [f"{c}_{i}" for i in range(n) for c in order], "unexpected parameter order"
    procs = {c: bind_processor(table.c[c].type, dialect) for c in NEW_ROW}
    return compiled.string, order, procs


@lru_cache(maxsize=4 * CHUNK)
def _held_sql(dialect: Dialect, n: int) -> tuple[str, list[str]]:
    """The SELECT of ``_held`` for ``n`` numbers, and the name of each positional parameter."""
    wanted: list[BindParameter[Any]] = [bindparam(f"tn_{i}") for i in range(n)]
    raw = RawIntake.__table__
    stmt = union_all(
        select(Submission.tracking_no).where(Submission.tracking_no.in_(wanted)),
        select(raw.c.tracking_no).where(raw.c.tracking_no.in_(wanted)))
    compiled = stmt.compile(dialect=dialect)
    return compiled.string, list(compiled.positiontup or ())


async def claim(session: AsyncSession, raw_ids: list[int]) -> set[int]:
    """Take rows for processing in the caller's transaction, in one statement; returns the ids
    that were still open (the others were processed meanwhile, and are left alone).

    This must be the transaction's first statement: the UPDATE takes the rows' write locks (on
    SQLite the database's), so a second process working on the same rows waits here until the
    first commits, then finds them done. Without it, two processes could file the same letter.
    """
    if not raw_ids:
        return set()
    result = await session.execute(
        update(RawIntake)
        .where(RawIntake.id.in_(raw_ids), RawIntake.state.in_(OPEN_STATES))
        .values(processed_at=utcnow())
        .returning(RawIntake.id)
    )
    return set(result.scalars())


async def get(session: AsyncSession, raw_id: int) -> RawIntake | None:
    return await session.get(RawIntake, raw_id)


async def by_source_key(session: AsyncSession, source_key: str) -> RawIntake | None:
    return await session.scalar(select(RawIntake).where(RawIntake.source_key == source_key))


async def due_ids(session: AsyncSession, limit: int = 100) -> list[int]:
    """Rows to process now, oldest first: new ones, and held ones whose retry time has come."""
    retry_due = and_(RawIntake.state == "held", RawIntake.retry_at <= utcnow())
    rows = await session.scalars(
        select(RawIntake.id)
        .where(or_(RawIntake.state == "pending", retry_due))
        .order_by(RawIntake.id)
        .limit(limit)
    )
    return list(rows)


async def tracking_no_pending(session: AsyncSession, tracking_no: str) -> bool:
    """Whether an input that was given this tracking number is still waiting to be filed (the
    web form stores the letter with its number and returns; the intake worker files it)."""
    found = await session.scalar(select(RawIntake.id).where(
        RawIntake.state.in_(OPEN_STATES), RawIntake.tracking_no == tracking_no).limit(1))
    return found is not None


async def tracking_no_quarantined(session: AsyncSession, tracking_no: str) -> bool:
    """Whether an input given this tracking number is quarantined: stored, not filed, in
    staff's hands (/console/intake). Its writer must not be told the number is wrong."""
    found = await session.scalar(select(RawIntake.id).where(
        RawIntake.state == "quarantined", RawIntake.tracking_no == tracking_no).limit(1))
    return found is not None


async def get_many(session: AsyncSession, ids: list[int]) -> list[RawIntake]:
    """Rows by id, in id order (a batch read ahead of processing)."""
    if not ids:
        return []
    return list(await session.scalars(select(RawIntake).where(RawIntake.id.in_(ids))
                                       .order_by(RawIntake.id)))


async def message_ids_done(session: AsyncSession, message_ids: list[str]) -> dict[str, int]:
    """The submission of the earliest processed copy of each Message-ID that has one. Rows
    still being processed are not ``done``, so the batch's own rows never match themselves.

    Looked up by Message-ID alone, the state checked here: given ``state = 'done'`` as well,
    SQLite without statistics walked the state index, i.e. every letter ever filed, for each new
    one (intake slowed down as the mailbox's history grew). A Message-ID has a handful of copies
    at most."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(RawIntake.message_id, RawIntake.submission_id, RawIntake.state)
        .where(RawIntake.message_id.in_(set(message_ids))).order_by(RawIntake.id)
    )
    found: dict[str, int] = {}
    for mid, sid, state in rows.all():
        if state == "done" and sid is not None and mid is not None:
            found.setdefault(mid, sid)
    return found


async def mark_done(
    session: AsyncSession,
    raw_id: int,
    *,
    submission_id: int | None,
    auto: str | None = None,
    auto_reason: str | None = None,
    state: str = "done",
    note: str | None = None,
) -> None:
    """One row's end state (``note`` is kept in its error column)."""
    await mark_done_many(session, [{"id": raw_id, "state": state, "submission_id": submission_id,
                                    "auto": auto, "auto_reason": auto_reason, "error": note}])


async def mark_done_many(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Many rows' end states in one executemany: each dict holds ``id``, ``state``,
    ``submission_id``, ``auto``, ``auto_reason`` and ``error``."""
    if outcomes:
        now = utcnow()
        await _MARK_DONE.run_in(session, [{**{k: v for k, v in o.items() if k != "id"},
                                           "row_id": o["id"], "processed_at": now}
                                          for o in outcomes])


def _mark_done(_dialect: Dialect) -> UpdateBase:
    table = RawIntake.__table__
    return update(table).where(table.c.id == bindparam("row_id")).values(
        {c: bindparam(c) for c in ("state", "submission_id", "auto", "auto_reason", "error",
                                   "processed_at")})


_MARK_DONE = Bulk(_mark_done)  # the driver's executemany: no per-row construct_params


async def mark_failed(
    session: AsyncSession, raw_id: int, error: str, max_attempts: int,
    retry_base: timedelta = RETRY_BASE,
) -> str:
    """Count a failed attempt: retry later with backoff, quarantine once it failed too often."""
    row = await session.get(RawIntake, raw_id)
    if row is None:
        return "missing"
    row.attempts += 1
    row.error = error[-4000:]
    row.state = "quarantined" if row.attempts >= max_attempts else "held"
    row.retry_at = utcnow() + retry_base * (2 ** (row.attempts - 1))
    return row.state


async def counts_by_state(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(RawIntake.state, func.count()).group_by(RawIntake.state)
    )
    return {state: n for state, n in rows.all()}


async def counts_by_channel(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(RawIntake.channel, func.count()).group_by(RawIntake.channel)
    )
    return {ch: n for ch, n in rows.all()}


async def requeue(session: AsyncSession, raw_id: int, *, no_ack: bool) -> RawIntake | None:
    """A held or quarantined row back to pending, its attempts reset, for staff; ``no_ack``
    files it without an acknowledgement (``payload["no_ack"]``, as ``ingest --no-ack`` does).
    None when the row is not held or quarantined (processed meanwhile)."""
    row = await session.get(RawIntake, raw_id, with_for_update=True)
    if row is None or row.state not in ("held", "quarantined"):
        return None
    row.state, row.attempts, row.retry_at = "pending", 0, None
    if no_ack:
        row.payload = {**(row.payload or {}), "no_ack": True}
    return row


async def problem_rows(session: AsyncSession, limit: int = 100) -> list[RawIntake]:
    """Held and quarantined rows, for staff."""
    rows = await session.scalars(
        select(RawIntake)
        .where(or_(RawIntake.state == "held", RawIntake.state == "quarantined"))
        .order_by(RawIntake.id.desc())
        .limit(limit)
    )
    return list(rows)
