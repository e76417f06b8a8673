"""What a citizen may see and do on the status page: their submission, staff replies, additions.

The status page (bot/web/status.py) reads one submission by tracking number, the public replies
staff sent about it (outbox rows of purpose "reply", as the exact bytes that were mailed), the
citizen's own follow-ups, and writes a follow-up or a satisfaction rating, each with a line in the
submission's history (actor "citizen").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import events, submissions
from storage.db import utcnow
from storage.models import Followup, Outbox, Submission

REPLY_PURPOSE = "reply"
# Stored as the words the citizen chose; the weekly digest counts them by these words.
RATINGS = ("满意", "基本满意", "不满意")


@dataclass(frozen=True)
class Reply:
    at: datetime
    message: bytes


async def replies(session: AsyncSession, submission_id: int) -> list[Reply]:
    """Replies staff wrote to the citizen, oldest first (failed deliveries are still replies)."""
    rows = await session.execute(
        select(Outbox.created_at, Outbox.message)
        .where(Outbox.submission_id == submission_id, Outbox.purpose == REPLY_PURPOSE)
        .order_by(Outbox.created_at, Outbox.id)
    )
    return [Reply(at, bytes(message)) for at, message in rows.all() if message]


async def add_followup(session: AsyncSession, submission: Submission, text: str) -> Followup:
    """A follow-up written on the status page, filed with the submission and in its history."""
    fu = await submissions.add_followup(
        session, submission_id=submission.id, channel="web", from_addr=submission.from_addr,
        subject="", text=text,
    )
    submission.updated_at = utcnow()
    await events.record(session, submission.id, "citizen", "followup",
                        {"channel": "web", "followup_id": fu.id})
    return fu


async def rate(session: AsyncSession, submission: Submission, satisfaction: str,
               comment: str | None) -> None:
    """Record (or change) the citizen's rating; the history keeps every earlier one."""
    if satisfaction not in RATINGS:
        raise ValueError(f"unknown rating {satisfaction!r}")
    action = "rating-changed" if submission.satisfaction else "rated"
    submission.satisfaction = satisfaction
    submission.rating_comment = comment or None
    await events.record(session, submission.id, "citizen", action,
                        {"satisfaction": satisfaction, "comment": bool(comment)})
