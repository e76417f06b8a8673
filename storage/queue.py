"""The staff work queue: listing, filtering, searching and counting submissions, and the
changes staff make to them (classification, status, assignee).

Lists are newest first and paged by keyset on ``(received_at, id)`` (the composite index
``ix_submissions_received_id``), so page 1000 costs what page 1 costs, at a million rows.
Search is a case-insensitive substring match on subject and text: Chinese has no spaces, and
staff expect "执行局" to find "法院执行局的电话". LIKE wildcards in the query are escaped; an exact
tracking number also matches. Machine mail (``auto``) and spam stay out of the default view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.db import utcnow
from storage.models import Attachment, Followup, RawIntake, Submission, User

OPEN_STATUSES = ("new", "accepted", "in_progress")
RESTRICTED_KIND = "report"  # content visible to supervisors and admins only
VIEWS = ("default", "auto", "spam", "all")


@dataclass
class QueueFilter:
    """What staff asked to see. Empty fields do not filter."""

    category: str | None = None
    measure: str | None = None
    kind: str | None = None
    status: str | None = None
    channel: str | None = None
    received_from: datetime | None = None  # inclusive
    received_to: datetime | None = None  # exclusive
    needs_review: bool = False
    overdue: bool = False
    assignee_id: int | None = None  # 0 = nobody
    q: str = ""
    view: str = "default"  # default | auto | spam | all
    # Set by the caller from the viewer's role: search must not look inside reports.
    search_restricted: bool = True
    accept_days: int = 15
    handle_days: int = 60
    now: datetime = field(default_factory=utcnow)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def overdue_clause(f: QueueFilter) -> ColumnElement[bool]:
    """Not decided within accept_days, or open and not resolved within handle_days."""
    accept_by = f.now - timedelta(days=f.accept_days)
    handle_by = f.now - timedelta(days=f.handle_days)
    return or_(
        and_(Submission.status == "new", Submission.received_at < accept_by),
        and_(Submission.status.in_(OPEN_STATUSES), Submission.received_at < handle_by),
    )


def _view_clause(view: str) -> ColumnElement[bool] | None:
    if view == "auto":
        return Submission.auto.is_not(None)
    if view == "spam":
        return and_(Submission.auto.is_(None), Submission.category == "spam")
    if view == "all":
        return None
    return and_(Submission.auto.is_(None), Submission.category != "spam")


# Looks like a tracking number (FK-8PR3-YKMH): then it is looked up by its unique index alone,
# not by scanning every letter's text.
_TRACKING_LIKE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8}){1,3}$")


def _search_clause(f: QueueFilter) -> ColumnElement[bool]:
    q = f.q.strip()
    if _TRACKING_LIKE.match(q):
        return Submission.tracking_no == q.upper()
    pattern = f"%{escape_like(q)}%"
    text_match = or_(Submission.subject.ilike(pattern, escape="\\"),
                     Submission.text.ilike(pattern, escape="\\"))
    if f.search_restricted:
        text_match = and_(text_match, or_(Submission.kind.is_(None),
                                          Submission.kind != RESTRICTED_KIND))
    return or_(Submission.tracking_no == q.upper(), text_match)


def conditions(f: QueueFilter, *, with_category: bool = True) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    view = _view_clause(f.view if f.view in VIEWS else "default")
    if view is not None:
        conds.append(view)
    if with_category and f.category:
        conds.append(Submission.category == f.category)
    for column, value in ((Submission.measure, f.measure), (Submission.kind, f.kind),
                          (Submission.status, f.status), (Submission.channel, f.channel)):
        if value:
            conds.append(column == value)
    if f.received_from is not None:
        conds.append(Submission.received_at >= f.received_from)
    if f.received_to is not None:
        conds.append(Submission.received_at < f.received_to)
    if f.needs_review:
        conds.append(Submission.needs_review.is_(True))
    if f.overdue:
        conds.append(overdue_clause(f))
    if f.assignee_id == 0:
        conds.append(Submission.assignee_id.is_(None))
    elif f.assignee_id is not None:
        conds.append(Submission.assignee_id == f.assignee_id)
    if f.q.strip():
        conds.append(_search_clause(f))
    return conds


def _after(cursor: tuple[datetime, int] | None) -> list[ColumnElement[bool]]:
    if cursor is None:
        return []
    at, sid = cursor
    return [or_(Submission.received_at < at,
                and_(Submission.received_at == at, Submission.id < sid))]


async def page(
    session: AsyncSession, f: QueueFilter, *, after: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> tuple[list[Submission], tuple[datetime, int] | None]:
    """One page, newest first, and the cursor of the next page (None on the last page)."""
    stmt = (select(Submission).where(*conditions(f), *_after(after))
            .order_by(Submission.received_at.desc(), Submission.id.desc()).limit(limit + 1))
    rows = list(await session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].received_at, rows[-1].id) if more and rows else None)


async def iter_all(session: AsyncSession, f: QueueFilter, limit: int,
                   batch: int = 1000) -> list[Submission]:
    """Everything the filter matches, newest first, up to ``limit`` rows (for export)."""
    out: list[Submission] = []
    cursor = None
    while len(out) < limit:
        rows, cursor = await page(session, f, after=cursor, limit=min(batch, limit - len(out)))
        out.extend(rows)
        if cursor is None:
            break
    return out


async def category_counts(session: AsyncSession, f: QueueFilter) -> dict[str, int]:
    """How many match the filter in each category (the category filter itself left out)."""
    stmt = (select(Submission.category, func.count())
            .where(*conditions(f, with_category=False)).group_by(Submission.category))
    return {cat: n for cat, n in (await session.execute(stmt)).all()}


async def count(session: AsyncSession, f: QueueFilter) -> int:
    stmt = select(func.count()).select_from(Submission).where(*conditions(f))
    return int(await session.scalar(stmt) or 0)


async def get(session: AsyncSession, submission_id: int) -> Submission | None:
    return await session.get(Submission, submission_id)


async def staff(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).where(not_(User.disabled))
                                      .order_by(User.name)))


async def update_fields(session: AsyncSession, submission_id: int, **values: Any) -> None:
    await session.execute(update(Submission).where(Submission.id == submission_id)
                          .values(updated_at=utcnow(), **values))



async def followups(session: AsyncSession, submission_id: int) -> list[Followup]:
    return list(await session.scalars(select(Followup).where(
        Followup.submission_id == submission_id).order_by(Followup.received_at, Followup.id)))


async def attachments(session: AsyncSession, submission_id: int) -> list[Attachment]:
    return list(await session.scalars(select(Attachment).where(
        Attachment.submission_id == submission_id).order_by(Attachment.id)))


async def attachment(session: AsyncSession, attachment_id: int) -> Attachment | None:
    return await session.get(Attachment, attachment_id)


async def raw_mail(session: AsyncSession, submission_id: int) -> RawIntake | None:
    """The raw mail filed as this submission (not one of its follow-ups), if it came by mail."""
    later = select(Followup.raw_intake_id).where(Followup.submission_id == submission_id,
                                                 Followup.raw_intake_id.is_not(None))
    return await session.scalar(
        select(RawIntake).where(RawIntake.submission_id == submission_id,
                                RawIntake.raw.is_not(None), RawIntake.id.not_in(later))
        .order_by(RawIntake.id).limit(1))


async def by_tracking_no(session: AsyncSession, tracking_no: str) -> Submission | None:
    return await session.scalar(select(Submission).where(Submission.tracking_no == tracking_no))
