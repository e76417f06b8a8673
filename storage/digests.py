"""Digests: the weekly figures as SQL aggregates, and the record of each digest sent.

Every figure of the weekly digest is one GROUP BY (or an ORDER BY … LIMIT for a median) over
``submissions``, so building it over a million rows costs a few index range scans, not a Python
loop. Time windows come in as aware UTC datetimes ``[start, end)``; the caller decides what a week
is. "Counted" submissions exclude spam and machine mail (auto-replies, bounces, list mail), which
are reported separately.

``record_run`` writes the ``digests`` row (unique week) and its outbox rows in the caller's
transaction: a second instance, a restart or a retry can never queue the same week twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.db import utcnow
from storage.models import Digest, Submission
from storage.upsert import insert_ignore

SPAM = "spam"
CLOSED_STATUSES = ("resolved", "rejected", "forwarded")


def _counted() -> ColumnElement[bool]:
    return and_(Submission.auto.is_(None), Submission.category != SPAM)


def _received(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Submission.received_at >= start, Submission.received_at < end)


async def _grouped(session: AsyncSession, key: Any, *where: Any) -> dict[Any, int]:
    rows = await session.execute(select(key, func.count()).where(*where).group_by(key))
    return {k: int(n) for k, n in rows.all()}


# -- volumes ---------------------------------------------------------------------------------
async def channel_totals(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    return await _grouped(session, Submission.channel, _received(start, end), _counted())


async def category_counts(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    return await _grouped(session, Submission.category, _received(start, end), _counted())


async def measure_counts(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[tuple[str, str], int]:
    """(category, measure) → count, for counted submissions that have a measure."""
    key = (Submission.category, Submission.measure)
    rows = await session.execute(
        select(*key, func.count())
        .where(_received(start, end), _counted(), Submission.measure.is_not(None))
        .group_by(*key)
    )
    return {(c, m): int(n) for c, m, n in rows.all()}


async def excluded_counts(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    """Spam and machine mail of the window, by kind ("spam", "auto-reply", "bounce", "list")."""
    kind = case((Submission.auto.is_not(None), Submission.auto), else_=SPAM)
    return await _grouped(
        session, kind, _received(start, end),
        or_(Submission.auto.is_not(None), Submission.category == SPAM),
    )


async def weekly_trend(
    session: AsyncSession, bounds: Sequence[datetime]
) -> dict[str, list[int]]:
    """Counted submissions per category in each window ``[bounds[i], bounds[i+1])``.

    One scan of the whole range; the bucket is a CASE over the bounds, which works the same on
    SQLite and PostgreSQL (no date_trunc/strftime dialect split).
    """
    n = len(bounds) - 1
    bucket = case(*((Submission.received_at < b, i) for i, b in enumerate(bounds[1:])))
    rows = await session.execute(
        select(Submission.category, bucket, func.count())
        .where(_received(bounds[0], bounds[-1]), _counted())
        .group_by(Submission.category, bucket)
    )
    series: dict[str, list[int]] = {}
    for category, i, count in rows.all():
        series.setdefault(category, [0] * n)[int(i)] = int(count)
    return series


# -- pipeline health -------------------------------------------------------------------------
@dataclass(frozen=True)
class Flow:
    received: int
    accepted: int
    resolved: int
    forwarded: int
    overdue_accept: int
    overdue_handle: int


async def _count(session: AsyncSession, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(Submission).where(*where))
               or 0)


def _between(col: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col >= start, col < end)


async def flow(
    session: AsyncSession, start: datetime, end: datetime, accept_days: int, handle_days: int
) -> Flow:
    """What moved in the window, and what was overdue at its end.

    Overdue at ``end``: received more than ``accept_days`` earlier and still not accepted then
    (or accepted only later); received more than ``handle_days`` earlier and not yet closed then.
    ``forwarded`` counts cases in status forwarded whose last change falls in the window (the
    schema has no forwarded_at; forwarding is the last thing that happens to such a case).
    """
    counted = _counted()
    not_accepted = or_(and_(Submission.accepted_at.is_(None), Submission.status == "new"),
                       Submission.accepted_at >= end)
    still_open = or_(and_(Submission.resolved_at.is_(None),
                          Submission.status.not_in(CLOSED_STATUSES)),
                     Submission.resolved_at >= end)
    return Flow(
        received=await _count(session, counted, _received(start, end)),
        accepted=await _count(session, counted, _between(Submission.accepted_at, start, end)),
        resolved=await _count(session, counted, _between(Submission.resolved_at, start, end)),
        forwarded=await _count(session, counted, Submission.status == "forwarded",
                               _between(Submission.updated_at, start, end)),
        overdue_accept=await _count(
            session, counted, not_accepted, Submission.status != "rejected",
            Submission.received_at < end - timedelta(days=accept_days)),
        overdue_handle=await _count(
            session, counted, still_open,
            Submission.received_at < end - timedelta(days=handle_days)),
    )


def _seconds(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def median_seconds(
    session: AsyncSession, done_col: str, start: datetime, end: datetime
) -> float | None:
    """Median of ``done_col - received_at`` over counted cases whose ``done_col`` is in the window.

    ``done_col`` is "accepted_at" or "resolved_at". SQLite has no percentile function, so the
    median is the middle row(s) of an ORDER BY, found with LIMIT/OFFSET after a COUNT.
    """
    done = getattr(Submission, done_col)
    where = (_counted(), _between(done, start, end))
    n = await _count(session, *where)
    if n == 0:
        return None
    duration = _seconds(session, done, Submission.received_at)
    rows = await session.scalars(
        select(duration).where(*where).order_by(duration)
        .offset((n - 1) // 2).limit(2 - n % 2)
    )
    values = [float(v) for v in rows]
    return sum(values) / len(values)


async def satisfaction(
    session: AsyncSession, start: datetime | None, end: datetime
) -> dict[str, int]:
    """Citizens' ratings (满意/基本满意/不满意) of cases resolved in the window (all time if no start)."""
    where = [_counted(), Submission.satisfaction.is_not(None), Submission.resolved_at < end]
    if start is not None:
        where.append(Submission.resolved_at >= start)
    return await _grouped(session, Submission.satisfaction, *where)


# -- rows ------------------------------------------------------------------------------------
async def sample_texts(
    session: AsyncSession, start: datetime, end: datetime, category: str,
    prefer_measure: str | None, limit: int = 3,
) -> list[tuple[str, str, str | None]]:
    """(subject, text, sender name) of representative cases of a category in the window.

    Representative = of the category's most mentioned measure first, then the most confidently
    classified, with some text to quote.
    """
    preferred = case((Submission.measure == prefer_measure, 0), else_=1)
    rows = await session.execute(
        select(Submission.subject, func.coalesce(Submission.new_text, Submission.text),
               Submission.from_name)
        .where(_received(start, end), _counted(), Submission.category == category,
               func.length(Submission.text) >= 10)
        .order_by(preferred, Submission.confidence.desc().nulls_last(), Submission.id)
        .limit(limit)
    )
    return [(s or "", t or "", n) for s, t, n in rows.all()]


WEEK_ROW_COLUMNS = ("tracking_no", "received_at", "channel", "category", "measure", "status",
                    "subject", "text", "from_name")


async def week_rows(
    session: AsyncSession, start: datetime, end: datetime, batch: int = 5000
) -> AsyncIterator[tuple[Any, ...]]:
    """Counted submissions of the window as tuples in WEEK_ROW_COLUMNS order, oldest first."""
    cols = [getattr(Submission, c) for c in WEEK_ROW_COLUMNS]
    last: tuple[datetime, int] | None = None
    while True:
        stmt = select(*cols, Submission.id).where(_received(start, end), _counted())
        if last is not None:  # keyset paging on the (received_at, id) index
            stmt = stmt.where(or_(Submission.received_at > last[0],
                                  and_(Submission.received_at == last[0],
                                       Submission.id > last[1])))
        rows = (await session.execute(
            stmt.order_by(Submission.received_at, Submission.id).limit(batch))).all()
        for row in rows:
            yield tuple(row[:-1])
        if len(rows) < batch:
            return
        last = (rows[-1][1], rows[-1][-1])


# -- runs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """One digest mail for one recipient, ready for the outbox."""

    recipient: str
    sender: str
    message_id: str
    data: bytes


async def exists(session: AsyncSession, week: str) -> bool:
    return await session.scalar(select(Digest.id).where(Digest.week == week)) is not None


async def weeks_since(session: AsyncSession, first: str) -> set[str]:
    """Weeks recorded from ``first`` on (ISO week strings compare in time order)."""
    return set(await session.scalars(select(Digest.week).where(Digest.week >= first)))


async def latest_week(session: AsyncSession) -> str | None:
    """The most recent week recorded ("2026-W47" strings sort in time order)."""
    return await session.scalar(select(func.max(Digest.week)))


async def record_run(
    session: AsyncSession, week: str, summary: dict[str, Any], html: str,
    messages: Sequence[Message], *, force: bool = False,
) -> int | None:
    """Record the week's digest and queue its mail; None if the week was already recorded.

    The INSERT comes first so that, of two instances racing, the second blocks on the unique week
    and then inserts nothing (ON CONFLICT DO NOTHING) and queues nothing. ``force`` re-queues a
    week already recorded (replacing its stored summary and HTML).
    """
    values = {"week": week, "created_at": utcnow(), "summary": summary, "html": html}
    digest_id = await insert_ignore(session, Digest, values)
    if digest_id is None:
        if not force:
            return None
        digest_id = await session.scalar(select(Digest.id).where(Digest.week == week))
        assert digest_id is not None
    first: int | None = None
    for msg in messages:
        row = await outbox.enqueue(session, purpose="digest", recipient=msg.recipient,
                                   sender=msg.sender, message_id=msg.message_id, message=msg.data)
        first = first or row.id
    await session.execute(
        update(Digest).where(Digest.id == digest_id)
        .values(outbox_id=first, summary=summary, html=html)
    )
    return digest_id


@dataclass(frozen=True)
class Run:
    week: str
    created_at: datetime
    outbox_id: int | None
    total: int | None


async def list_runs(session: AsyncSession, limit: int = 100) -> list[Run]:
    """Recorded digests, newest week first (for the console)."""
    rows = await session.execute(
        select(Digest.week, Digest.created_at, Digest.outbox_id, Digest.summary)
        .order_by(Digest.week.desc()).limit(limit)
    )
    return [Run(w, c, o, (s or {}).get("total")) for w, c, o, s in rows.all()]


async def get_html(session: AsyncSession, week: str) -> str | None:
    """The stored, self-contained HTML of one week's digest (chart inlined as a data: URI)."""
    return await session.scalar(select(Digest.html).where(Digest.week == week))
