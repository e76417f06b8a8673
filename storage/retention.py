"""Retention: removing the personal data of old, closed submissions (``feedback-bot purge``).

A submission closed (resolved, rejected or forwarded) longer ago than ``intake.retention_days``
keeps what statistics need — category, measure, kind, status, dates, channel, satisfaction — and
loses everything that could identify or quote the citizen: name, address, phone, subject, text,
the classifier's explanation (it quotes the text), the rating comment, follow-up texts, the raw
input (mail bytes, form payload), the mails we sent about it (they quote the letter) and its
attachments. A "purged" event records that this happened and when.

The closing time is ``resolved_at`` when staff set it, else ``updated_at`` (the last change).
Attachment files live on disk, outside the database: :func:`purge_submission` returns the
SHA-256 names no longer referenced by any row, and the caller deletes those files after commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import events, search
from storage.models import Attachment, Event, Followup, Outbox, RawIntake, Submission
from storage.workflow import CLOSED_STATUSES

PURGED = "purged"
IN_FLIGHT = ("pending", "sending")  # mail still to be delivered is left alone


async def due(session: AsyncSession, cutoff: datetime, limit: int = 500) -> list[int]:
    """Ids of closed submissions not yet purged whose closing time is before ``cutoff``."""
    closed_at = func.coalesce(Submission.resolved_at, Submission.updated_at)
    already = exists().where(Event.submission_id == Submission.id, Event.action == PURGED)
    rows = await session.scalars(
        select(Submission.id)
        .where(Submission.status.in_(CLOSED_STATUSES), closed_at < cutoff, ~already)
        .order_by(Submission.id)
        .limit(limit)
    )
    return list(rows)


async def _blank_raw(session: AsyncSession, submission_id: int) -> None:
    followup_raw = select(Followup.raw_intake_id).where(Followup.submission_id == submission_id)
    await session.execute(
        update(RawIntake)
        .where(or_(RawIntake.submission_id == submission_id, RawIntake.id.in_(followup_raw)))
        .values(raw=None, payload=None, message_id=None, error=None, auto_reason=None)
    )


async def _drop_attachments(session: AsyncSession, submission_id: int) -> list[str]:
    shas = set(await session.scalars(
        select(Attachment.sha256).where(Attachment.submission_id == submission_id)))
    await session.execute(delete(Attachment).where(Attachment.submission_id == submission_id))
    if not shas:
        return []
    still_used = set(await session.scalars(
        select(Attachment.sha256).where(Attachment.sha256.in_(shas))))
    return sorted(shas - still_used)


async def purge_submission(session: AsyncSession, submission_id: int, retention_days: int
                           ) -> list[str]:
    """Blank one submission's personal data; the attachment files that may now be deleted."""
    await session.execute(
        update(Submission).where(Submission.id == submission_id).values(
            from_name=None, from_addr=None, phone=None, subject="", text="", new_text=None,
            message_id=None, explanation=None, rating_comment=None, flags=None,
            sender_addr_key=None, sender_phone_key=None, postal_address=None, unit_result=None,
        )
    )
    await search.index(session, submission_id, "", "")  # the search terms quote the text
    await session.execute(
        update(Followup).where(Followup.submission_id == submission_id)
        .values(from_addr=None, subject="", text="")
    )
    await _blank_raw(session, submission_id)
    await session.execute(
        update(Outbox)
        .where(Outbox.submission_id == submission_id, Outbox.state.not_in(IN_FLIGHT))
        .values(message=b"", recipient="")
    )
    orphans = await _drop_attachments(session, submission_id)
    await events.record(session, submission_id, "system", PURGED,
                        {"retention_days": retention_days})
    return orphans
