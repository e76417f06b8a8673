"""The audit log: every line of every submission's history, plus the lines that belong to no
submission (sign-ins, failed sign-ins, refused attempts), all in the ``events`` table.

Lines about a submission are written through :mod:`storage.events` with its id; this module
reads the log as a whole for supervisors, and writes nothing of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, Submission


@dataclass
class AuditFilter:
    """What a supervisor asked to see; empty fields do not filter."""

    actor: str = ""
    action: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


async def recent(session: AsyncSession, *, actions: tuple[str, ...] = (),
                 limit: int = 200) -> list[Event]:
    """Newest first: events that belong to no submission, optionally of some actions only."""
    stmt = select(Event).where(Event.submission_id.is_(None))
    if actions:
        stmt = stmt.where(Event.action.in_(actions))
    return list(await session.scalars(stmt.order_by(Event.id.desc()).limit(limit)))


async def page(session: AsyncSession, f: AuditFilter, *, before: int | None = None,
               limit: int = 100) -> tuple[list[tuple[Event, str | None]], int | None]:
    """One page of the whole log, newest first, each line with its submission's tracking
    number (None for sign-ins and the like); and the id to continue before (None at the end).
    Paged by keyset on the primary key, so an old page costs what the first one costs."""
    stmt = select(Event, Submission.tracking_no).outerjoin(
        Submission, Submission.id == Event.submission_id)
    if f.actor:
        stmt = stmt.where(Event.actor == f.actor)
    if f.action:
        stmt = stmt.where(Event.action == f.action)
    if f.since is not None:
        stmt = stmt.where(Event.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Event.at < f.until)
    if before is not None:
        stmt = stmt.where(Event.id < before)
    rows: list[tuple[Event, str | None]] = [(e, tn) for e, tn in (await session.execute(
        stmt.order_by(Event.id.desc()).limit(limit + 1))).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][0].id if more and rows else None)
