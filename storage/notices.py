"""Notices (告知) given to citizens: stored, listed in order, and the mail they thread under.

``handlers/notices.py`` writes them (rendered from templates/notices/); the status page lists
every notice of a case, the console lists them with a print view for each.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import Notice, Outbox

ACK_PURPOSE = "ack"


async def add(session: AsyncSession, *, submission_id: int, kind: str, title: str, text: str,
              actor: str) -> Notice:
    row = Notice(submission_id=submission_id, kind=kind, title=title, text=text, actor=actor,
                 created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


async def for_submission(session: AsyncSession, submission_id: int) -> list[Notice]:
    """A case's notices in the order they were given."""
    return list(await session.scalars(select(Notice).where(
        Notice.submission_id == submission_id).order_by(Notice.created_at, Notice.id)))


async def nth(session: AsyncSession, submission_id: int, n: int) -> Notice | None:
    """A case's ``n``-th notice (from 1), as the console numbers them."""
    if n < 1:
        return None
    return await session.scalar(select(Notice).where(Notice.submission_id == submission_id)
                                .order_by(Notice.created_at, Notice.id).offset(n - 1).limit(1))


async def ack_message_id(session: AsyncSession, submission_id: int) -> str | None:
    """The Message-ID of the acknowledgement a case's citizen got, if any: every later mail
    about the case (notices, staff replies) is threaded under it."""
    return await session.scalar(
        select(Outbox.message_id)
        .where(Outbox.submission_id == submission_id, Outbox.purpose == ACK_PURPOSE)
        .order_by(Outbox.id).limit(1))
