"""The history of each submission, which doubles as the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import Event


async def record(
    session: AsyncSession,
    submission_id: int | None,
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(Event(submission_id=submission_id, at=utcnow(), actor=actor, action=action,
                      detail=detail))


async def for_submission(session: AsyncSession, submission_id: int) -> list[Event]:
    rows = await session.scalars(
        select(Event).where(Event.submission_id == submission_id).order_by(Event.id)
    )
    return list(rows)
