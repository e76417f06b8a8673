"""Public replies (公开答复): what the public page lists, and the record of publishing.

A row holds the question and answer exactly as the supervisor approved them (masked, then
checked and edited by a person: handlers/public_reply.py decides what may be published). It is
written with its audit event in the caller's transaction; withdrawing keeps the row (and its
history) and takes it off the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import events
from storage.clock import utcnow
from storage.models import Event, PublicReply, Submission

PUBLISHED = "public-reply-published"
WITHDRAWN = "public-reply-withdrawn"
# The history lines whose text is the answer given to the citizen (handlers/casework.py).
_ANSWERS = ("resolve", "answer_review", "answer_recheck")


async def of(session: AsyncSession, submission_id: int) -> PublicReply | None:
    return await session.scalar(select(PublicReply).where(
        PublicReply.submission_id == submission_id))


async def publish(session: AsyncSession, sub: Submission, *, question: str, answer: str,
                  actor: str) -> PublicReply:
    """Put (or put back, with the new text) ``sub``'s question and answer on the public page."""
    row = await of(session, sub.id)
    now = utcnow()
    if row is None:
        row = PublicReply(submission_id=sub.id, category=sub.category, measure=sub.measure,
                          question=question, answer=answer, published_by=actor,
                          published_at=now)
        session.add(row)
    else:
        row.category, row.measure = sub.category, sub.measure
        row.question, row.answer, row.published_by = question, answer, actor
        row.published_at, row.withdrawn_at = now, None
    await session.flush()
    await events.record(session, sub.id, actor, PUBLISHED, {"reply_id": row.id})
    return row


async def withdraw(session: AsyncSession, sub: Submission, actor: str) -> bool:
    """Take ``sub``'s reply off the public page; whether it was on it."""
    row = await of(session, sub.id)
    if row is None or row.withdrawn_at is not None:
        return False
    row.withdrawn_at = utcnow()
    await events.record(session, sub.id, actor, WITHDRAWN, {"reply_id": row.id})
    return True


@dataclass(frozen=True)
class Listed:
    id: int
    category: str
    measure: str | None
    question: str
    answer: str
    published_at: datetime


async def listed(session: AsyncSession) -> list[Listed]:
    """Every reply on the public page, by category and measure, newest first within each."""
    rows = await session.execute(
        select(PublicReply.id, PublicReply.category, PublicReply.measure, PublicReply.question,
               PublicReply.answer, PublicReply.published_at)
        .where(PublicReply.withdrawn_at.is_(None))
        .order_by(PublicReply.category, PublicReply.measure, PublicReply.published_at.desc()))
    return [Listed(*r) for r in rows.all()]


async def answer_of(session: AsyncSession, submission_id: int) -> str:
    """The last answer (答复意见) given to the citizen: the text of the case's last resolve,
    复查 or 复核 answer in its history; "" when there is none."""
    rows = await session.scalars(
        select(Event.detail).where(Event.submission_id == submission_id,
                                   Event.action == "status")
        .order_by(Event.at.desc(), Event.id.desc()))
    for detail in rows:
        if detail and detail.get("action") in _ANSWERS and detail.get("text"):
            return str(detail["text"])
    return ""
