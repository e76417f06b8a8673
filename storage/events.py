"""The history of each submission, which doubles as the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import Event
from storage.upsert import Bulk


async def record(
    session: AsyncSession,
    submission_id: int | None,
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(Event(submission_id=submission_id, at=utcnow(), actor=actor, action=action,
                      detail=detail))


async def record_many(session: AsyncSession,
                      items: list[tuple[int | None, str, str, dict[str, Any] | None]]) -> None:
    """:func:`record` for a batch, (submission id, actor, action, detail) each: one executemany
    instead of an ORM object per event."""
    if items:
        now = utcnow()
        await _INSERT_EVENT.run_in(session, [  # the driver's executemany (storage.upsert.Bulk)
            {"submission_id": sid, "at": now, "actor": actor, "action": action, "detail": detail}
            for sid, actor, action, detail in items])


# Two events a letter (received, acknowledged): row by row through construct_params they cost
# more than the INSERT.
_INSERT_EVENT = Bulk.insert(Event.__table__,
                            ("submission_id", "at", "actor", "action", "detail"))


async def for_submission(session: AsyncSession, submission_id: int) -> list[Event]:
    rows = await session.scalars(
        select(Event).where(Event.submission_id == submission_id).order_by(Event.id)
    )
    return list(rows)
