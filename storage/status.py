"""What a citizen may see and do on the status page: their submission, staff replies, additions.

The status page (bot/web/status.py) reads one submission by tracking number, the public replies
staff sent about it (outbox rows of purpose "reply", as the exact bytes that were mailed), the
citizen's own follow-ups (filed, and still being filed), stores a follow-up as raw intake (the
intake worker files it), and records a satisfaction rating with a line in the submission's
history (actor "citizen").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import events, raw_intake, submissions
from storage.models import Outbox, RawIntake, Submission

REPLY_PURPOSE = "reply"
# Stored as the words the citizen chose; the weekly digest counts them by these words.
RATINGS = ("满意", "基本满意", "不满意")


@dataclass(frozen=True)
class Reply:
    at: datetime
    message: bytes


@dataclass(frozen=True)
class Addition:
    """A follow-up as the status page shows it."""

    received_at: datetime
    text: str


async def replies(session: AsyncSession, submission_id: int) -> list[Reply]:
    """Replies staff wrote to the citizen, oldest first (failed deliveries are still replies)."""
    rows = await session.execute(
        select(Outbox.created_at, Outbox.message)
        .where(Outbox.submission_id == submission_id, Outbox.purpose == REPLY_PURPOSE)
        .order_by(Outbox.created_at, Outbox.id)
    )
    return [Reply(at, bytes(message)) for at, message in rows.all() if message]


async def add_followup(session: AsyncSession, submission: Submission, text: str,
                       source_key: str) -> int | None:
    """A follow-up written on the status page, stored as raw intake like every other input:
    the intake worker files it as the submission's follow-up (history actor "citizen"). The
    row carries the submission's tracking number; ``source_key`` (the page's form nonce) makes
    a resent form store nothing. Returns the row's id, or None when it was stored before."""
    fields = {"body": text, "email": submission.from_addr or ""}
    return await raw_intake.add(session, channel="web", source_key=source_key,
                                tracking_no=submission.tracking_no,
                                payload={"fields": fields, "addition": True, "actor": "citizen"})


async def followups(session: AsyncSession, submission: Submission) -> list[Addition]:
    """What the citizen added, oldest first: the filed follow-ups, then those written on the
    status page that the intake worker has not filed yet (or could not: quarantined for
    staff), so that the citizen sees at once what they added."""
    filed = [Addition(f.received_at, f.text)
             for f in await submissions.followups(session, submission.id)]
    rows = await session.execute(
        select(RawIntake.received_at, RawIntake.payload)
        .where(RawIntake.tracking_no == submission.tracking_no,
               RawIntake.state.in_((*raw_intake.OPEN_STATES, "quarantined")))
        .order_by(RawIntake.id))
    return filed + [Addition(at, str(payload["fields"]["body"])) for at, payload in rows.all()
                    if payload and payload.get("addition")]


async def carrier(session: AsyncSession, submission: Submission) -> Submission | None:
    """The case a merged submission (并单) is carried by: its status page shows that case's
    status and deadlines, never its content."""
    if submission.merged_into_id is None:
        return None
    return await session.get(Submission, submission.merged_into_id)


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
