"""The staff review list (the console's work queue): listing, filtering, searching and counting
submissions, and the changes staff make to them (classification, status, assignee).

Lists are newest first and paged by keyset on ``(received_at, id)`` (the composite index
``ix_submissions_received_id``), so page 1000 costs what page 1 costs, at a million rows.
Search is a case-insensitive substring match on subject and text: Chinese has no spaces, and
staff expect "执行局" to find "法院执行局的电话". LIKE wildcards in the query are escaped; an exact
tracking number also matches. The bigram index of ``storage.search`` only narrows the rows that
substring test runs on, so it never changes a result. Machine mail (``auto``) and spam stay out
of the default view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import SQLColumnExpression, and_, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage import search
from storage.db import utcnow
from storage.models import Attachment, Followup, RawIntake, Submission, User
from storage.workflow import (
    HANDLING,
    MAX_EXTENSION_DAYS,
    NEW,
    OPEN_STATUSES,
    RECHECK,
    REVIEW,
    REVIEW_DAYS,
    cutoff,
)

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
    restricted_only: bool = False  # only the restricted letters (举报), for supervisors
    urgent_only: bool = False  # only the urgent letters (issue #19)
    accept_days: int = 15
    handle_days: int = 60
    now: datetime = field(default_factory=utcnow)


def restricted_clause() -> ColumnElement[bool]:
    """The SQL condition "this letter's content is restricted" (举报: supervisors and admins
    only), for queries that count restricted letters apart (the digest)."""
    return Submission.restricted.is_(True)


def unrestricted() -> ColumnElement[bool]:
    """The letters whose content every staff role may read: the one storage-level form of the
    restriction (``Submission.restricted``; the views ask ``bot.web.console.security``)."""
    return Submission.restricted.is_(False)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def overdue_clause(f: QueueFilter) -> ColumnElement[bool]:
    """Not decided within accept_days of receipt; in handling and not resolved within
    handle_days of acceptance (plus its one extension); a 复查 or 复核 not answered within
    REVIEW_DAYS of the request: ``storage.workflow.clocks`` as a query."""
    accept_by = cutoff(f.now, f.accept_days)
    handle_by = cutoff(f.now, f.handle_days)
    handling = Submission.status.in_(HANDLING)
    # An extension is 1..MAX_EXTENSION_DAYS whole days: one range per length keeps the query
    # portable (no date arithmetic on a column, which SQLite and PostgreSQL write differently).
    extended = or_(*(and_(Submission.extended_days == d,
                          Submission.accepted_at < cutoff(f.now, f.handle_days + d))
                     for d in range(1, MAX_EXTENSION_DAYS + 1)))
    return or_(
        and_(Submission.status == NEW, Submission.received_at < accept_by),
        and_(handling, Submission.accepted_at < handle_by,
             or_(Submission.extended_days.is_(None), extended)),
        and_(Submission.status.in_(OPEN_STATUSES), Submission.accepted_at.is_(None),
             Submission.received_at < accept_by - timedelta(days=f.handle_days)),
        and_(Submission.status == REVIEW,
             Submission.review_requested_at < cutoff(f.now, REVIEW_DAYS)),
        and_(Submission.status == RECHECK,
             Submission.recheck_requested_at < cutoff(f.now, REVIEW_DAYS)),
    )


def _view_clause(view: str, *, ordered: bool = False) -> ColumnElement[bool] | None:
    """Which rows a view shows. For a newest-first page (``ordered``) the default view's terms
    are written so that no index can serve them (``auto || ''``, like SQLite's unary ``+``): they
    match nearly every row, yet without fresh statistics SQLite takes the (auto, category) index
    for them and sorts a million rows (2 s) instead of walking the received_at index and stopping
    after one page (1 ms). Counting keeps the indexable form: there that index is the fast way."""
    auto: SQLColumnExpression[Any]
    category: SQLColumnExpression[Any]
    auto, category = Submission.auto, Submission.category
    if ordered:
        auto, category = auto.concat(""), category.concat("")
    if view == "auto":
        return Submission.auto.is_not(None)
    if view == "spam":
        return and_(Submission.auto.is_(None), Submission.category == "spam")
    if view == "all":
        return None
    return and_(auto.is_(None), category != "spam")


# Looks like a tracking number (FK-8PR3-YKMH): then it is looked up by its unique index alone,
# not by scanning every letter's text.
_TRACKING_LIKE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8}){1,3}$")
# Up to this many index hits a page is read as "id IN (hits)" and sorted (a rare word: a few ms
# instead of a scan of every text). Beyond it the word is common, and the plain newest-first scan,
# which stops after one page of matches, is the faster of the two (bench/console_list.py).
INDEX_CAP = 5000


def _substring(q: str) -> ColumnElement[bool]:
    """What a search means: a case-insensitive substring of the subject or of the text."""
    pattern = f"%{escape_like(q)}%"
    return or_(Submission.subject.ilike(pattern, escape="\\"),
               Submission.text.ilike(pattern, escape="\\"))


async def _narrowed(session: AsyncSession, q: str, *, paging: bool) -> ColumnElement[bool]:
    """The substring test, limited to the rows the bigram index allows when that is cheaper.

    A one-character query (or one of punctuation only) has no bigram: it keeps the scan; staff
    rarely search for a single character. A page takes the index while the word is rare
    (``INDEX_CAP``). Counting cannot stop early: on SQLite, which scans in one thread, reading
    only the index's candidates is always the faster way (a word in a fifth of a million rows:
    0.3 s instead of 1.8 s); PostgreSQL scans in parallel and is as fast as its index past the cap.
    """
    terms = search.query_terms(q)
    if not terms:
        return _substring(q)
    await search.plan_per_query(session)
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    if ((paging or dialect != "sqlite")
            and await search.count_matching(session, terms, INDEX_CAP + 1) > INDEX_CAP):
        return _substring(q)
    return and_(Submission.id.in_(search.matching_ids(dialect, terms)), _substring(q))


async def _tracking_id(session: AsyncSession, q: str) -> int | None:
    """The submission whose tracking number is ``q`` in any case (any query may be one)."""
    if not q.isascii() or len(q) > 32:
        return None
    return await session.scalar(select(Submission.id).where(Submission.tracking_no == q.upper()))


def _query(f: QueueFilter) -> str:
    """The words searched for. A NUL cannot be in stored text (PostgreSQL refuses it, and
    intake drops control characters), so it is dropped rather than sent to fail the query."""
    return f.q.replace("\x00", "").strip()


async def _search_clause(session: AsyncSession, f: QueueFilter, *, paging: bool,
                         use_index: bool = True) -> ColumnElement[bool]:
    """The search's WHERE clause; ``use_index=False`` when the caller already knows the word is
    too common for the index to narrow anything."""
    q = _query(f)
    if _TRACKING_LIKE.match(q):
        return Submission.tracking_no == q.upper()
    text_match = await _narrowed(session, q, paging=paging) if use_index else _substring(q)
    if f.search_restricted:
        text_match = and_(text_match, unrestricted())
    # Resolved first rather than OR-ed into the statement, which would cost the planner the index.
    tracking_id = await _tracking_id(session, q)
    return text_match if tracking_id is None else or_(Submission.id == tracking_id, text_match)


async def conditions(session: AsyncSession, f: QueueFilter, *, with_category: bool = True,
                     paging: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter (async: the search asks the index how common a word is)."""
    conds: list[ColumnElement[bool]] = []
    view = _view_clause(f.view if f.view in VIEWS else "default", ordered=paging)
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
    if f.restricted_only:
        conds.append(Submission.restricted.is_(True))
    if f.urgent_only:
        conds.append(Submission.urgent.is_(True))
    if f.overdue:
        conds.append(overdue_clause(f))
    if f.assignee_id == 0:
        conds.append(Submission.assignee_id.is_(None))
    elif f.assignee_id is not None:
        conds.append(Submission.assignee_id == f.assignee_id)
    if _query(f):
        conds.append(await _search_clause(session, f, paging=paging))
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
    conds = await conditions(session, f, paging=True)
    stmt = (select(Submission).where(*conds, *_after(after))
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
            .where(*await conditions(session, f, with_category=False))
            .group_by(Submission.category))
    return {cat: n for cat, n in (await session.execute(stmt)).all()}


# The list page counts every category exactly while the search index has at most this many
# candidates (reading them costs ~1.5 ms per thousand on SQLite); past it, over the newest
# SAMPLE_ROWS letters of the filter only, and says so (a word in a fifth of a million letters
# would take 0.3 s to count exactly, on every new search).
EXACT_COUNT_CAP = 20_000
SAMPLE_ROWS = 20_000


async def list_counts(session: AsyncSession, f: QueueFilter) -> tuple[dict[str, int], int | None]:
    """Counts per category for the list page, and None when they are exact, or the number of
    newest letters (in the other filters) they were counted over when the search is too common.
    """
    q = _query(f)
    terms = [] if not q or _TRACKING_LIKE.match(q) else search.query_terms(q)
    if not terms or await search.count_matching(session, terms, EXACT_COUNT_CAP + 1) \
            <= EXACT_COUNT_CAP:
        return await category_counts(session, f), None
    # Newest first, so in the form a page uses (``paging``): walked down received_at, not sorted.
    others = await conditions(session, replace(f, q=""), with_category=False, paging=True)
    newest = (select(Submission.id).where(*others)
              .order_by(Submission.received_at.desc(), Submission.id.desc())
              .limit(SAMPLE_ROWS).subquery())
    found = await _search_clause(session, f, paging=True, use_index=False)
    stmt = (select(Submission.category, func.count())
            .where(Submission.id.in_(select(newest.c.id)), found)
            .group_by(Submission.category))
    return {cat: n for cat, n in (await session.execute(stmt)).all()}, SAMPLE_ROWS


async def count(session: AsyncSession, f: QueueFilter) -> int:
    stmt = select(func.count()).select_from(Submission).where(*await conditions(session, f))
    return int(await session.scalar(stmt) or 0)


async def get(session: AsyncSession, submission_id: int) -> Submission | None:
    return await session.get(Submission, submission_id)


async def staff(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).where(not_(User.disabled))
                                      .order_by(User.name)))


async def update_fields(session: AsyncSession, submission_id: int, **values: Any) -> None:
    await session.execute(update(Submission).where(Submission.id == submission_id)
                          .values(updated_at=utcnow(), **values))
    if "subject" in values or "text" in values:  # keep the search terms in step
        subject, body = (await session.execute(select(Submission.subject, Submission.text)
                                               .where(Submission.id == submission_id))).one()
        await search.index(session, submission_id, subject, body)



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
