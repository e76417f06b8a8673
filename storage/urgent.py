"""The queries of urgent letters (issue #19): the mark set and cleared by staff, who took the
alert, the letters nobody took in time (bot/workers/urgent.py), and who is alerted then.

Each change is a conditional UPDATE, so two people (or two instances) acting at once cannot
both take the same alert, and the supervisors are alerted once per letter.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import Submission, User
from storage.workflow import OPEN_STATUSES

SUPERVISOR_ROLES = ("supervisor",)  # who is alerted when nobody took an urgent letter


async def mark(session: AsyncSession, submission_id: int, reasons: list[str], by: str) -> bool:
    """Mark a letter urgent (staff); False when it already was. The escalation clock starts now
    and the letter's earlier taking, if any, is forgotten: it is a new alarm."""
    result = await session.execute(
        update(Submission).where(Submission.id == submission_id, Submission.urgent.is_(False))
        .values(urgent=True, urgent_reasons=reasons, urgent_at=utcnow(), urgent_by=by,
                urgent_taken_by=None, urgent_taken_at=None, urgent_escalated_at=None,
                updated_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def clear(session: AsyncSession, submission_id: int) -> bool:
    """Lift the mark (a supervisor decided it is not urgent); False when it was not marked.
    Who took it stays recorded in the history."""
    result = await session.execute(
        update(Submission).where(Submission.id == submission_id, Submission.urgent.is_(True))
        .values(urgent=False, updated_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def take(session: AsyncSession, submission_id: int, who: str, now: datetime) -> bool:
    """Record that ``who`` took the letter's alert; False when someone took it first or it is
    not urgent."""
    result = await session.execute(
        update(Submission).where(Submission.id == submission_id, Submission.urgent.is_(True),
                                 Submission.urgent_taken_at.is_(None))
        .values(urgent_taken_by=who, urgent_taken_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def untaken_since(session: AsyncSession, before: datetime, limit: int = 100
                        ) -> list[Submission]:
    """Open urgent letters marked before ``before`` that nobody took and whose supervisors
    have not been alerted yet, oldest first."""
    return list(await session.scalars(
        select(Submission)
        .where(Submission.urgent.is_(True), Submission.urgent_taken_at.is_(None),
               Submission.urgent_escalated_at.is_(None), Submission.urgent_at < before,
               Submission.status.in_(OPEN_STATUSES))
        .order_by(Submission.urgent_at, Submission.id).limit(limit)))


async def next_deadline(session: AsyncSession) -> datetime | None:
    """When the oldest letter still waiting for someone to take it was marked."""
    return await session.scalar(
        select(Submission.urgent_at)
        .where(Submission.urgent.is_(True), Submission.urgent_taken_at.is_(None),
               Submission.urgent_escalated_at.is_(None), Submission.status.in_(OPEN_STATUSES))
        .order_by(Submission.urgent_at).limit(1))


async def claim_escalation(session: AsyncSession, submission_id: int, now: datetime) -> bool:
    """Claim a letter's escalation; False when another instance did, or it was taken since."""
    result = await session.execute(
        update(Submission).where(Submission.id == submission_id,
                                 Submission.urgent_escalated_at.is_(None),
                                 Submission.urgent_taken_at.is_(None))
        .values(urgent_escalated_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def supervisors(session: AsyncSession) -> list[User]:
    """The enabled supervisors with an address."""
    return list(await session.scalars(
        select(User).where(User.role.in_(SUPERVISOR_ROLES), User.disabled.is_(False),
                           User.email.is_not(None), User.email != "")
        .order_by(User.id)))


async def pinned(session: AsyncSession, limit: int = 20) -> list[Submission]:
    """The open urgent letters, newest first: pinned above the console's queue (the index
    ``ix_submissions_urgent_received``), whatever page or order the list below shows."""
    return list(await session.scalars(
        select(Submission)
        .where(Submission.urgent.is_(True), Submission.status.in_(OPEN_STATUSES),
               Submission.auto.is_(None))
        .order_by(Submission.received_at.desc(), Submission.id.desc()).limit(limit)))
