"""Submissions: adding them, finding them, reading them out for export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import search
from storage.db import utcnow
from storage.models import Attachment, Followup, Submission


async def add(session: AsyncSession, **fields: Any) -> Submission:
    now = utcnow()
    fields.setdefault("received_at", now)
    sub = Submission(created_at=now, updated_at=now, **fields)
    session.add(sub)
    await session.flush()
    await search.index(session, sub.id, sub.subject, sub.text)
    return sub


async def add_many(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """:func:`add` for a batch: one multi-row INSERT (and one for the search terms); returns the
    new ids in the order of ``rows``."""
    if not rows:
        return []
    now = utcnow()
    values = [{"received_at": now, **r, "created_at": now, "updated_at": now} for r in rows]
    result = await session.execute(
        insert(Submission.__table__)  # Core: no ORM bulk layer
        .returning(Submission.__table__.c.id, sort_by_parameter_order=True), values)
    ids = list(result.scalars())
    await search.index_many(session, [(i, r.get("subject"), r.get("text"))
                                      for i, r in zip(ids, rows, strict=True)])
    return ids


async def by_tracking_no(session: AsyncSession, tracking_no: str) -> Submission | None:
    """The submission holding this tracking number (the status page, the API, staff tools)."""
    return await session.scalar(select(Submission).where(Submission.tracking_no == tracking_no))


async def followups(session: AsyncSession, submission_id: int) -> list[Followup]:
    """A submission's follow-ups in the order they arrived (console and status page alike)."""
    return list(await session.scalars(select(Followup).where(
        Followup.submission_id == submission_id).order_by(Followup.received_at, Followup.id)))


async def by_tracking_nos(session: AsyncSession,
                          tracking_nos: list[str]) -> dict[str, tuple[int, str | None]]:
    """(id, sender address) of the submissions holding these tracking numbers, by number."""
    if not tracking_nos:
        return {}
    rows = await session.execute(
        select(Submission.tracking_no, Submission.id, Submission.from_addr)
        .where(Submission.tracking_no.in_(set(tracking_nos))))
    return {tn: (sid, addr) for tn, sid, addr in rows.all()}


async def by_message_id(session: AsyncSession, message_id: str) -> Submission | None:
    return await session.scalar(
        select(Submission).where(Submission.message_id == message_id).limit(1)
    )


async def add_attachment(session: AsyncSession, **fields: Any) -> Attachment:
    att = Attachment(**fields)
    session.add(att)
    await session.flush()
    return att


async def add_followup(session: AsyncSession, **fields: Any) -> Followup:
    fields.setdefault("received_at", utcnow())
    fu = Followup(**fields)
    session.add(fu)
    await session.flush()
    return fu


async def touch(session: AsyncSession, submission_id: int) -> None:
    """Mark a submission changed now (``updated_at``)."""
    await session.execute(update(Submission).where(Submission.id == submission_id)
                          .values(updated_at=utcnow()))


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Submission)) or 0)


async def iter_since(
    session: AsyncSession, since: datetime | None, batch: int = 1000
) -> AsyncIterator[Submission]:
    """All submissions received at or after ``since``, oldest first, streamed in batches."""
    last_id = 0
    while True:
        stmt = select(Submission).where(Submission.id > last_id)
        if since is not None:
            stmt = stmt.where(Submission.received_at >= since)
        rows = list(await session.scalars(stmt.order_by(Submission.id).limit(batch)))
        if not rows:
            return
        for row in rows:
            yield row
        last_id = rows[-1].id
