"""Raw intake rows: every input exactly as it arrived, and how far it got.

A source (IMAP, Maildir, web form, import) calls ``add`` first and commits; only then is the
input acknowledged to its origin (IMAP flag and move, Maildir rename, HTTP redirect). The intake
worker then runs the pipeline on rows that are ``pending`` (or ``held`` after an error) until they
are ``done``, or ``quarantined`` for staff after too many failures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import RawIntake
from storage.upsert import insert_ignore, insert_ignore_many

OPEN_STATES = ("pending", "held")
RETRY_BASE = timedelta(seconds=30)


async def add(
    session: AsyncSession,
    *,
    channel: str,
    source_key: str,
    raw: bytes | None = None,
    payload: dict[str, Any] | None = None,
    message_id: str | None = None,
    tracking_no: str | None = None,
    received_at: datetime | None = None,
) -> int | None:
    """Store one input; return its id, or None when this source key was stored before."""
    values = dict(
        channel=channel,
        source_key=source_key,
        raw=raw,
        payload=payload,
        message_id=message_id,
        tracking_no=tracking_no,
        received_at=received_at or utcnow(),
        state="pending",
        attempts=0,
    )
    return await insert_ignore(session, RawIntake, values)


async def add_many(session: AsyncSession, inputs: list[dict[str, Any]]) -> dict[str, int]:
    """Store many inputs in one statement (a batch of fetched mail, a burst of form posts);
    each dict holds ``add``'s keyword arguments. Returns the new id by source key; a source key
    that is missing from the result was stored before."""
    return await insert_ignore_many(session, RawIntake, new_rows(inputs), "source_key")


def new_rows(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete rows for ``add_many``'s inputs: every column an INSERT of many rows names."""
    now = utcnow()
    blank = dict(raw=None, payload=None, message_id=None, tracking_no=None, error=None,
                 processed_at=None)
    rows = [{**blank, "state": "pending", "attempts": 0, **i} for i in inputs]
    for row in rows:
        row["received_at"] = row.get("received_at") or now
    return rows


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
        if state == "done" and sid is not None:
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
        table = RawIntake.__table__  # Core executemany, not the ORM's bulk update by key
        stmt = update(table).where(table.c.id == bindparam("row_id")).values(
            {c: bindparam(c) for c in ("state", "submission_id", "auto", "auto_reason", "error",
                                       "processed_at")})
        await session.execute(stmt, [{**{k: v for k, v in o.items() if k != "id"},
                                      "row_id": o["id"], "processed_at": now} for o in outcomes])


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
