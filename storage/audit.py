"""The audit log outside any one submission: sign-ins, failed sign-ins, refused attempts.

Lines about a submission (views of a report, every staff action) go through
:mod:`storage.events` with the submission's id; this module reads and writes the rest, which
share the same ``events`` table with no submission.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event


async def recent(session: AsyncSession, *, actions: tuple[str, ...] = (),
                 limit: int = 200) -> list[Event]:
    """Newest first: events that belong to no submission, optionally of some actions only."""
    stmt = select(Event).where(Event.submission_id.is_(None))
    if actions:
        stmt = stmt.where(Event.action.in_(actions))
    return list(await session.scalars(stmt.order_by(Event.id.desc()).limit(limit)))
