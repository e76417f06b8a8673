"""The queries of the reminders (bot/workers/reminders.py): open cases and who works on them,
the forwarded cases whose unit is to be reminded, and the record of each morning's mail.

A morning reminder is recorded per (day, staff member) in ``reminder_runs``, in the same
transaction as its outbox row: the unique pair makes the schedule idempotent across restarts
and instances, as the digest's unique week does.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from storage.models import ReminderRun, Submission, User
from storage.upsert import insert_ignore
from storage.workflow import FORWARDED, OPEN_STATUSES

# What the clocks and a reminder line need: never the letter's text.
_CASE_COLUMNS = (
    Submission.id, Submission.tracking_no, Submission.status, Submission.category,
    Submission.taxonomy_version, Submission.subject, Submission.restricted,
    Submission.assignee_id, Submission.received_at, Submission.accepted_at,
    Submission.resolved_at, Submission.extended_days, Submission.forward_due,
    Submission.forwarded_to, Submission.review_requested_at, Submission.review_answered_at,
    Submission.recheck_requested_at, Submission.recheck_answered_at, Submission.auto,
    Submission.unit_reminded_at,
)


async def open_cases(session: AsyncSession) -> list[Submission]:
    """Every open case a person works on (machine mail is not one), oldest first."""
    return list(await session.scalars(
        select(Submission).options(load_only(*_CASE_COLUMNS))
        .where(Submission.status.in_(OPEN_STATUSES), Submission.auto.is_(None))
        .order_by(Submission.received_at, Submission.id)))


async def recipients(session: AsyncSession) -> list[User]:
    """The enabled staff accounts that have an address for their reminder."""
    return list(await session.scalars(
        select(User).where(User.disabled.is_(False), User.email.is_not(None), User.email != "")
        .order_by(User.id)))


async def reminded(session: AsyncSession, day: str) -> set[int]:
    """The staff members whose reminder of ``day`` is queued already."""
    return set(await session.scalars(select(ReminderRun.user_id).where(ReminderRun.day == day)))


async def record(session: AsyncSession, *, day: str, user_id: int, outbox_id: int | None,
                 cases: int, now: datetime) -> bool:
    """Record ``user_id``'s reminder of ``day``; False (and nothing written) when another
    instance recorded it first: the caller then rolls its outbox row back."""
    return await insert_ignore(session, ReminderRun, {
        "day": day, "user_id": user_id, "outbox_id": outbox_id, "cases": cases,
        "created_at": now}) is not None


async def units_due(session: AsyncSession, until: date) -> list[Submission]:
    """Forwarded cases whose unit's due date is ``until`` or earlier and which the unit has
    not been reminded of since it was forwarded."""
    return list(await session.scalars(
        select(Submission).options(load_only(*_CASE_COLUMNS))
        .where(Submission.status == FORWARDED, Submission.forward_due <= until,
               Submission.unit_reminded_at.is_(None))
        .order_by(Submission.forward_due, Submission.id)))


async def mark_unit_reminded(session: AsyncSession, submission_id: int, now: datetime) -> bool:
    """Claim a case's unit reminder; False when another instance claimed it first."""
    result = await session.execute(
        update(Submission).where(Submission.id == submission_id,
                                 Submission.unit_reminded_at.is_(None))
        .values(unit_reminded_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]

