"""Digests: the weekly figures as SQL aggregates, and the record of each digest sent.

Every figure of the weekly digest comes from a few grouped queries over ``submissions``, each an
index range scan, most of them index-only (the covering indexes of migration 0003): the week's
volumes are one GROUP BY over the week, the trend one over twelve weeks, the overdue counts read
only the cases still open or closed after the week, and the medians, the week's ratings and the
quoted examples come from the rows that make them. Time windows come in as aware UTC datetimes
``[start, end)``; the caller decides what a week is.

"Counted" submissions exclude spam and machine mail (auto-replies, bounces, list mail), which
are reported separately. Counted-ness is checked on the rows a range found (a FILTER, or in
Python), never put into WHERE: ``auto IS NULL`` and ``category = ?`` look like equality
lookups, and SQLite without statistics (the service never runs ANALYZE) then prefers the
(auto, category) or category index over the time range and reads most of the table — 15 s
instead of 0.5 s at a million rows.

``record_run`` writes the ``digests`` row (unique week) and its outbox rows in the caller's
transaction: a second instance, a restart or a retry can never queue the same week twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, case, func, literal_column, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.db import utcnow
from storage.models import Digest, Event, Submission, SubmissionLink
from storage.review_list import restricted_clause
from storage.upsert import insert_ignore
from storage.workflow import FORWARDED, HANDLING, NEW, OPEN_STATUSES, REJECTED

SPAM = "spam"


def _counted() -> ColumnElement[bool]:
    return and_(Submission.auto.is_(None), Submission.category != SPAM)


def is_counted(auto: str | None, category: str) -> bool:
    """:func:`_counted` for a row already read."""
    return auto is None and category != SPAM


def _between(col: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col >= start, col < end)


def _received(start: datetime, end: datetime) -> ColumnElement[bool]:
    return _between(Submission.received_at, start, end)


# The far end of the closed ranges below: SQLite without statistics rates a range closed on
# both sides narrower than a one-sided one, and nothing lies a century beyond it.
_CENTURY_DAYS = 36500


def _extended() -> ColumnElement[bool]:
    """The extended cases (``extended_days IS NOT NULL``), written as a closed range so that
    SQLite reads them by their own index.

    Without statistics SQLite takes ``IS NOT NULL`` for a condition nearly every row meets: it
    scanned the table for the extended cases (0.5 s at a million rows), and beside "accepted in
    the last 90 days" it led with that range instead (100,000 rows, 0.45 s). An extension is
    1..MAX_EXTENSION_DAYS whole days (storage.workflow); the upper bound only closes the range."""
    return Submission.extended_days.between(1, _CENTURY_DAYS)


# -- volumes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Volumes:
    """The window's submissions, counted once and split every way the digest reports them."""

    channels: dict[str, int]  # counted, by channel
    categories: dict[str, int]  # counted, by category
    measures: dict[tuple[str, str], int]  # counted with a measure, by (category, measure)
    excluded: dict[str, int]  # spam and machine mail, by kind ("spam", "auto-reply", …)

    @property
    def counted(self) -> int:
        return sum(self.channels.values())


async def volumes(session: AsyncSession, start: datetime, end: datetime) -> Volumes:
    """One GROUP BY over the window (index-only on ix_submissions_week), split in Python.

    A few hundred groups come back, where four separate GROUP BYs read the week four times.
    Machine mail is reported under its kind even when it was also classified as spam.
    """
    key = (Submission.channel, Submission.category, Submission.measure, Submission.auto)
    rows = await session.execute(
        select(*key, func.count()).where(_received(start, end)).group_by(*key))
    channels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    measures: Counter[tuple[str, str]] = Counter()
    excluded: Counter[str] = Counter()
    for channel, category, measure, auto, count in rows.all():
        n = int(count)
        if auto is not None:
            excluded[auto] += n
        elif category == SPAM:
            excluded[SPAM] += n
        else:
            channels[channel] += n
            categories[category] += n
            if measure is not None:
                measures[(category, measure)] += n
    return Volumes(dict(channels), dict(categories), dict(measures), dict(excluded))


async def weekly_trend(
    session: AsyncSession, bounds: Sequence[datetime]
) -> dict[str, list[int]]:
    """Counted submissions per category in each window ``[bounds[i], bounds[i+1])``.

    One scan of the whole range; the bucket is a CASE over the bounds, which works the same on
    SQLite and PostgreSQL (no date_trunc/strftime dialect split). Categories with no counted
    submission in the range are left out.
    """
    n = len(bounds) - 1
    bucket = case(*((Submission.received_at < b, i) for i, b in enumerate(bounds[1:])))
    rows = await session.execute(
        select(Submission.category, bucket, func.count().filter(_counted()))
        .where(_received(bounds[0], bounds[-1]))
        .group_by(Submission.category, bucket)
    )
    series: dict[str, list[int]] = {}
    for category, i, count in rows.all():
        if count:
            series.setdefault(category, [0] * n)[int(i)] = int(count)
    return series


# -- pipeline health -------------------------------------------------------------------------
def _seconds(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def done_in(
    session: AsyncSession, done_col: str, start: datetime, end: datetime
) -> list[tuple[float, str | None]]:
    """(seconds from receipt, satisfaction) of counted cases whose ``done_col`` is in the window.

    ``done_col`` is "accepted_at" or "resolved_at". The length is the week's count, the durations
    give the median, and the ratings of the resolved ones are the week's satisfaction — one read
    of only the rows that need it.
    """
    done = getattr(Submission, done_col)
    duration = _seconds(session, done, Submission.received_at)
    rows = await session.execute(
        select(duration, Submission.satisfaction, Submission.auto, Submission.category)
        .where(_between(done, start, end))
    )
    return [(float(seconds), rating) for seconds, rating, auto, category in rows.all()
            if is_counted(auto, category)]


async def forwarded(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Counted cases in status forwarded whose last change falls in the window.

    The schema has no forwarded_at; forwarding is the last thing that happens to such a case.
    """
    return int(await session.scalar(
        select(func.count().filter(_counted()))
        .where(Submission.status == FORWARDED, _between(Submission.updated_at, start, end))
    ) or 0)


async def satisfaction(session: AsyncSession, end: datetime) -> dict[str, int]:
    """Citizens' ratings (满意/基本满意/不满意) of every case resolved before ``end``."""
    rows = await session.execute(
        select(Submission.satisfaction, func.count().filter(_counted()))
        .where(Submission.satisfaction.is_not(None), Submission.resolved_at < end)
        .group_by(Submission.satisfaction))
    return {rating: int(n) for rating, n in rows.all() if n and rating is not None}


# -- what leaders read: the three rates and the overdue list ---------------------------------
def day_index(col: Any, starts: Sequence[datetime]) -> ColumnElement[int]:
    """Which of the local days ``[starts[i], starts[i+1])`` ``col`` falls on: ``i``; -1 before
    ``starts[0]``, ``len(starts) - 1`` from ``starts[-1]`` on; NULL when ``col`` is NULL.

    The days' starts come in as instants, so the database needs no time zone (SQLite has none):
    the caller computes them with zoneinfo. A CASE tree that halves the days at each level,
    so a row is compared about log2(days) times, whatever the period's length (up to a year
    in the console)."""
    def tree(cuts: Sequence[datetime], below: int) -> Any:
        if not cuts:
            return literal_column(str(below))  # an int of ours: inline, not a parameter
        mid = len(cuts) // 2
        return case((col < cuts[mid], tree(cuts[:mid], below)),
                    else_=tree(cuts[mid + 1:], below + mid + 1))

    return case((col.is_(None), null()), else_=tree(list(starts), -1))


class DayCount(NamedTuple):
    """How many counted cases share the local days two of their dates fall on (indexes of
    :func:`day_index`) and their extension: what the digest's clocks are computed from
    (storage.workflow counts deadlines in whole local days)."""

    day: int  # the day of the date the window is on
    other: int | None  # the day of the other date; None when it is not set
    extended_days: int | None
    cases: int


async def _day_counts(session: AsyncSession, col: Any, days: Sequence[datetime], other: Any,
                      other_days: Sequence[datetime], *where: ColumnElement[bool]
                      ) -> list[DayCount]:
    """Counted cases matching ``where``, grouped by the days ``col`` and ``other`` fall on.

    A few hundred groups come back where the rows are thousands a week (each made a Python
    object and put through zoneinfo: 0.4 s of a million-row digest). The counted filter is a
    FILTER, not WHERE, so the plan stays the window's index range (module docstring)."""
    day, other_day = day_index(col, days), day_index(other, other_days)
    rows = await session.execute(
        select(day, other_day, Submission.extended_days, func.count().filter(_counted()))
        .where(*where).group_by(day, other_day, Submission.extended_days))
    return [DayCount(int(d), None if o is None else int(o), ext, int(n))
            for d, o, ext, n in rows.all() if n]


async def received_between(session: AsyncSession, start: datetime, end: datetime,
                           days: Sequence[datetime], decided_days: Sequence[datetime]
                           ) -> list[DayCount]:
    """Counted cases received in ``[start, end)`` (whose acceptance fell due in a period), by
    the day received (``days``) and the day decided (``decided_days``)."""
    return await _day_counts(session, Submission.received_at, days, Submission.accepted_at,
                             decided_days, _received(start, end))


async def decided_between(session: AsyncSession, start: datetime, end: datetime,
                          days: Sequence[datetime], received_days: Sequence[datetime]
                          ) -> list[DayCount]:
    """Counted cases whose acceptance decision was made in ``[start, end)``, by the day
    decided (``days``) and the day received (``received_days``)."""
    return await _day_counts(session, Submission.accepted_at, days, Submission.received_at,
                             received_days, _between(Submission.accepted_at, start, end))


async def accepted_for_handling(session: AsyncSession, start: datetime, end: datetime,
                                extended_since: datetime, days: Sequence[datetime],
                                answered_days: Sequence[datetime]) -> list[DayCount]:
    """Counted, not refused cases accepted in ``[start, end)``, and the extended ones accepted
    from ``extended_since`` on (an extension moves the handling deadline later): the cases
    whose handling fell due in a period; by the day accepted (``days``) and the day answered
    (``answered_days``)."""
    return await _day_counts(
        session, Submission.accepted_at, days, Submission.resolved_at, answered_days,
        Submission.status != REJECTED, or_(
            _between(Submission.accepted_at, start, end),
            and_(_extended(), _between(Submission.accepted_at, extended_since, end))))


async def resolved_between(session: AsyncSession, start: datetime, end: datetime,
                           days: Sequence[datetime], accepted_days: Sequence[datetime]
                           ) -> list[DayCount]:
    """Counted cases answered (办结) in ``[start, end)``, by the day answered (``days``) and the
    day accepted (``accepted_days``)."""
    return await _day_counts(session, Submission.resolved_at, days, Submission.accepted_at,
                             accepted_days, _between(Submission.resolved_at, start, end),
                             Submission.accepted_at.is_not(None))


class LateCase(NamedTuple):
    """An overdue case as the leadership's list shows it: no one's name, no words."""

    tracking_no: str
    category: str
    stage: str  # "accept" or "handle"
    started_at: datetime  # received (accept) or accepted (handle): where its clock started
    extended_days: int | None
    restricted: bool


@dataclass(frozen=True)
class LateCases:
    """Cases overdue at the end of a period: how many, and the longest overdue of them."""

    accept: int
    handle: int
    reports: int  # 举报 among them (counted, never listed to the digest's readers)
    oldest: list[LateCase]  # at most ``limit`` per stage, longest overdue first


_LATE_COLS = (Submission.tracking_no, Submission.category, Submission.received_at,
              Submission.accepted_at, Submission.extended_days, restricted_clause(),
              Submission.auto)


def _late_rows(rows: Sequence[Any], stage: str) -> list[LateCase]:
    out = []
    for tn, category, received, accepted, ext, restricted, auto in rows:
        if is_counted(auto, category):
            start = received if stage == "accept" else accepted
            out.append(LateCase(tn, category, stage, start, ext, bool(restricted)))
    return out


def _after(col: Any, end: datetime) -> ColumnElement[bool]:
    """``col >= end``, written as a closed range so that SQLite leads with ``col``'s index.

    SQLite runs no ANALYZE here, so it rates every one-sided range alike; of "resolved after the
    period" (a few cases) and "accepted before the deadline" (nearly all) it took the second,
    and read 570,000 rows of a million for 14,000 (3.8 s of the digest's 7.6). A range closed on
    both sides counts as narrower. Nothing is done or decided a century after a digest's end."""
    return col.between(end, end + timedelta(days=_CENTURY_DAYS))


async def late_cases(session: AsyncSession, end: datetime, accept_before: datetime,
                     handle_before: datetime, still_late: Any, limit: int = 100) -> LateCases:
    """Counted cases overdue at ``end`` (the period's last moment): not decided by ``end``
    though received before ``accept_before``, or accepted before ``handle_before`` and not
    answered by ``end`` (refused cases have no handling clock).

    ``still_late(case) -> bool`` re-checks an extended case against its own later deadline.
    The counts are index ranges (the covering status index; the done columns' indexes for the
    cases closed only after ``end``); only the extended cases (their own index) and the
    ``limit`` oldest of each stage are read as rows.
    """
    counted = _counted()
    undecided = (Submission.status == NEW, Submission.accepted_at.is_(None),
                 Submission.received_at < accept_before)
    unanswered = (Submission.status.in_(HANDLING), Submission.resolved_at.is_(None),
                  Submission.accepted_at < handle_before)
    report = restricted_clause()
    counts = (await session.execute(
        select(func.count().filter(counted, *undecided), func.count().filter(counted, *unanswered),
               func.count().filter(counted, report, or_(and_(*undecided), and_(*unanswered))))
        .where(Submission.status.in_(OPEN_STATUSES)))).one()
    decided_late = _late_rows((await session.execute(select(*_LATE_COLS).where(
        _after(Submission.accepted_at, end), Submission.received_at < accept_before))).all(),
        "accept")
    answered_late = _late_rows((await session.execute(select(*_LATE_COLS).where(
        _after(Submission.resolved_at, end), Submission.accepted_at < handle_before,
        Submission.status != REJECTED))).all(), "handle")
    # By the extension's own index alone, the rest checked here: with the other conditions in
    # the SQL, SQLite (no ANALYZE) led with "resolved_at IS NULL", every open case (0.9 s at a
    # million rows); the extended cases are a few.
    extended = _late_rows([row[:-2] for row in (await session.execute(
        select(*_LATE_COLS, Submission.status, Submission.resolved_at)
        .where(_extended()))).all()
        if row.status in HANDLING and row.resolved_at is None and row.accepted_at is not None
        and row.accepted_at < handle_before], "handle")
    saved = [c for c in [*extended, *answered_late] if c.extended_days and not still_late(c)]
    oldest_open = _late_rows((await session.execute(select(*_LATE_COLS).where(*undecided)
                                                    .order_by(Submission.received_at)
                                                    .limit(limit))).all(), "accept")
    oldest_handling = _late_rows((await session.execute(
        select(*_LATE_COLS).where(*unanswered).order_by(Submission.accepted_at)
        .limit(limit))).all(), "handle")
    oldest = [c for c in [*oldest_open, *decided_late, *oldest_handling, *answered_late]
              if not c.extended_days or still_late(c)]
    closed_late = [*decided_late, *answered_late]
    return LateCases(accept=int(counts[0] or 0) + len(decided_late),
                     handle=int(counts[1] or 0) + len(answered_late) - len(saved),
                     reports=int(counts[2] or 0) + sum(c.restricted for c in closed_late)
                     - sum(c.restricted for c in saved),
                     oldest=list(dict.fromkeys(oldest)))


async def week_links(session: AsyncSession, start: datetime, end: datetime
                     ) -> list[tuple[int, int]]:
    """Links (storage.repeats) from letters received in ``[start, end)``: (letter, case)."""
    rows = await session.execute(
        select(SubmissionLink.submission_id, SubmissionLink.related_id)
        .join(Submission, Submission.id == SubmissionLink.submission_id)
        .where(_received(start, end)))
    return [(int(a), int(b)) for a, b in rows.all()]


# -- rows ------------------------------------------------------------------------------------
class WeekRow(NamedTuple):
    """One counted submission of the week: a row of the XLSX, a candidate for a quote."""

    id: int
    tracking_no: str
    received_at: datetime
    channel: str
    category: str
    measure: str | None
    status: str
    subject: str
    text: str
    new_text: str | None
    from_name: str | None
    confidence: float | None
    restricted: bool  # 举报: counted, never quoted (storage.review_list.restricted_clause)


async def week_rows(
    session: AsyncSession, start: datetime, end: datetime, batch: int = 5000
) -> AsyncIterator[WeekRow]:
    """Counted submissions of the window, oldest first (keyset pages of ``batch`` rows);
    restricted letters (举报) come with their subject, text and sender's name blanked."""
    cols = [*(getattr(Submission, c) for c in WeekRow._fields[:-1]), restricted_clause()]
    last: tuple[datetime, int] | None = None
    while True:
        stmt = select(*cols, Submission.auto).where(_received(start, end))
        if last is not None:  # keyset paging on the (received_at, id) index
            stmt = stmt.where(or_(Submission.received_at > last[0],
                                  and_(Submission.received_at == last[0],
                                       Submission.id > last[1])))
        rows = (await session.execute(
            stmt.order_by(Submission.received_at, Submission.id).limit(batch))).all()
        for *values, restricted, auto in rows:
            row = WeekRow._make([*values, bool(restricted)])
            if is_counted(auto, row.category):
                # A 举报's words and writer never reach the digest's code at all: what it is not
                # given, no template, quote or spreadsheet column can leak to its recipients.
                yield row._replace(subject="", text="", new_text=None, from_name=None) \
                    if row.restricted else row
        if len(rows) < batch:
            return
        last = (rows[-1].received_at, rows[-1].id)


# -- runs ------------------------------------------------------------------------------------
STARTED = "digest-started"  # the audit event of the digest schedule's first run


async def since(session: AsyncSession, now: datetime) -> datetime:
    """When the digest's record begins: its schedule's first run, or the first letter if one is
    older (mail imported from before the service). The first call records ``now`` as that run.

    A week that ended before this moment is never sent by the schedule: the digest of a week
    before the service existed is empty, and says nothing true. Two instances starting together
    may both record a start; the earliest counts.
    """
    # Events without a letter (sign-ins, account changes, this one) through their index, not
    # the whole history.
    started = await session.scalar(select(func.min(Event.at)).where(
        Event.submission_id.is_(None), Event.action == STARTED))
    if started is None:
        session.add(Event(submission_id=None, at=now, actor="system", action=STARTED))
        started = now
    first_letter = await session.scalar(select(func.min(Submission.received_at)))
    return min(started, first_letter) if first_letter is not None else started


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
