"""What leaders read, for any period: the three rates (三率), the on-time rates (按期), the
overdue cases, and the period's themes (clusters of linked or similar letters).

The definitions follow Chinese petition practice and the clocks of ``storage.workflow``
(calendar days in the digest's time zone, the day of the event not counted):

- **响应率**: of the cases whose acceptance decision fell due in the period, the share decided
  (accepted, refused or forwarded) within ``accept_days`` (15) of receipt.
- **办结率**: of the accepted cases whose handling deadline (``handle_days`` after acceptance,
  plus the one extension) fell in the period, the share answered by that deadline.
- **满意率**: of the cases answered in the period that the citizen rated on the status page,
  the share rated 满意 or 基本满意.
- **按期受理率 / 按期办结率**: of the decisions / answers made in the period, the share made
  within the 15-day / 60-day (extended) limit: how punctual the work done in the period was,
  where 响应率 and 办结率 ask what became of the cases that fell due.

A case still undecided (unanswered) whose deadline has not passed yet is in neither count. Every
figure is evaluated as of the period's last day, or today when the period runs on past it. The
overdue list names a case by its tracking number, category and days overdue; a 举报 is counted
there, never listed (SECURITY.md: a digest recipient sees only how many).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.digest.mask import mask
from handlers.digest.weeks import Period, day_start
from handlers.text import excerpt
from storage import digests
from storage.digests import LateCase, WeekRow
from storage.workflow import day_of

GOOD_RATINGS = ("满意", "基本满意")
OVERDUE_LISTED = 100  # per stage: the longest overdue; the counts are complete
THEMES_LISTED = 10
THEME_MIN = 2  # letters: one letter is not a theme
THEME_LETTERS = 5000  # the newest letters of the period compared for themes (bounded work)
MAX_EXTENSION = 30  # storage.workflow.MAX_EXTENSION_DAYS, the look-back for extended cases
STAGE_NAMES = {"accept": "受理", "handle": "办结"}


@dataclass
class Rate:
    key: str  # response, resolution, satisfaction, on_time_accept, on_time_handle
    name: str  # 响应率 …
    meaning: str
    done: int
    of: int

    @property
    def pct(self) -> float | None:
        return round(self.done * 100.0 / self.of, 1) if self.of else None

    @property
    def shown(self) -> str:
        return "暂无" if self.pct is None else f"{self.pct}%（{self.done}/{self.of}）"


@dataclass
class Late:
    tracking_no: str
    category: str  # the short label
    stage: str  # 受理 / 办结
    due: str  # ISO date
    days: int


@dataclass
class Theme:
    size: int
    category: str  # the short label of its most frequent category
    sample: str  # a masked excerpt of its first letter
    tracking_nos: list[str]
    earlier: int  # linked cases received before the period


@dataclass
class Leading:
    first_day: str
    last_day: str
    as_of: str
    rates: list[Rate]  # 响应率, 办结率, 满意率
    on_time: list[Rate]  # 按期受理率, 按期办结率
    overdue_accept: int
    overdue_handle: int
    overdue_reports: int  # 举报 among the overdue: counted, never listed
    overdue: list[Late] = field(default_factory=list)
    themes: list[Theme] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    accept_days: int
    handle_days: int
    tz: ZoneInfo


@dataclass(frozen=True)
class Days:
    """A run of local days as the digest's grouped queries see them (storage.digests.day_index):
    the instants they start at, and back from a day's index to the day."""

    first: date
    starts: list[datetime]  # one more than the days: the last is where the run ends

    @classmethod
    def of(cls, first: date, last: date, tz: ZoneInfo) -> Days:
        return cls(first, [day_start(first + timedelta(days=i), tz)
                           for i in range((last - first).days + 2)])

    @property
    def start(self) -> datetime:
        return self.starts[0]

    @property
    def end(self) -> datetime:
        return self.starts[-1]

    def day(self, index: int) -> date:
        """The day of ``index``; -1 (any day before the run) gives the day before it, and the
        index past its last day the day after it. Each rate below compares such a day only with
        deadlines inside the run, so that stand-in gives every comparison its true answer."""
        return self.first + timedelta(days=index)


def _handle_due(accepted_at: datetime, extended: int | None, lim: Limits) -> date:
    return day_of(accepted_at, lim.tz) + timedelta(days=lim.handle_days + (extended or 0))


def _cohort(cases: Iterable[tuple[date, date | None, int]], period: Period, as_of: date
            ) -> tuple[int, int]:
    """(on time, counted) of the cases whose deadline falls in the period, given as (deadline,
    day done or None, how many); one still open whose deadline has not passed by ``as_of`` is
    not counted yet."""
    on_time = counted = 0
    for due, done, n in cases:
        if not period.first <= due <= period.last:
            continue
        if done is not None and done <= due:
            on_time += n
        elif done is None and due >= as_of:
            continue
        counted += n
    return on_time, counted


async def rates(session: AsyncSession, period: Period, as_of: date, lim: Limits
                ) -> tuple[list[Rate], list[Rate]]:
    """(三率, 按期 rates) of ``period``.

    The database counts the cases by the local days their dates fall on (a few hundred groups);
    the clocks are applied here to each group. ``received`` and ``accepted`` are the days whose
    cases fall due in the period (accepted: back to the longest extension); a date outside them
    is compared only with deadlines it is wholly before or after (:meth:`Days.day`), which holds
    as long as no extension is longer than ``MAX_EXTENSION`` (storage.workflow refuses one)."""
    tz, a, h = lim.tz, lim.accept_days, lim.handle_days
    start, end = period.start(tz), period.end(tz)
    days = Days.of(period.first, period.last, tz)
    received = Days.of(period.first - timedelta(days=a), period.last - timedelta(days=a), tz)
    accepted = Days.of(period.first - timedelta(days=h + MAX_EXTENSION),
                       period.last - timedelta(days=h), tz)
    due_a = await digests.received_between(session, received.start, received.end,
                                           received.starts, days.starts)
    due_h = await digests.accepted_for_handling(
        session, day_start(period.first - timedelta(days=h), tz), accepted.end, accepted.start,
        accepted.starts, days.starts)
    response = _cohort(((received.day(g.day) + timedelta(days=a),
                         None if g.other is None else days.day(g.other), g.cases)
                        for g in due_a), period, as_of)
    resolution = _cohort(((accepted.day(g.day) + timedelta(days=h + (g.extended_days or 0)),
                           None if g.other is None else days.day(g.other), g.cases)
                          for g in due_h), period, as_of)
    rated = [r for _s, r in await digests.done_in(session, "resolved_at", start, end) if r]
    decided = await digests.decided_between(session, start, end, days.starts, received.starts)
    answered = await digests.resolved_between(session, start, end, days.starts, accepted.starts)
    on_time_a = sum(g.cases for g in decided if g.other is not None
                    and days.day(g.day) <= received.day(g.other) + timedelta(days=a))
    on_time_h = sum(g.cases for g in answered if g.other is not None
                    and days.day(g.day) <= accepted.day(g.other)
                    + timedelta(days=h + (g.extended_days or 0)))
    return [
        Rate("response", "响应率", f"受理期限在本期届满的来信中，{a}日内作出受理决定（受理、不予受理或转办）的比例",
             *response),
        Rate("resolution", "办结率", f"办理期限（受理后{h}日，含延期）在本期届满的来信中，按期办结答复的比例",
             *resolution),
        Rate("satisfaction", "满意率", "本期办结、群众已评价的来信中，评价“满意”或“基本满意”的比例",
             sum(r in GOOD_RATINGS for r in rated), len(rated)),
    ], [
        Rate("on_time_accept", "按期受理率", f"本期作出的受理决定中，在{a}日期限内作出的比例",
             on_time_a, sum(g.cases for g in decided)),
        Rate("on_time_handle", "按期办结率", f"本期办结的来信中，在{h}日办理期限（含延期）内办结的比例",
             on_time_h, sum(g.cases for g in answered)),
    ]


async def overdue(session: AsyncSession, as_of: date, lim: Limits, short: Callable[[str], str]
                  ) -> tuple[int, int, int, list[Late]]:
    """(acceptance overdue, handling overdue, 举报 among them, the listed cases) at the end of
    ``as_of``: a deadline on an earlier day has passed, as storage.workflow.clocks counts."""
    tz = lim.tz

    def due(c: LateCase) -> date:
        if c.stage == "accept":
            return day_of(c.started_at, tz) + timedelta(days=lim.accept_days)
        return _handle_due(c.started_at, c.extended_days, lim)

    late = await digests.late_cases(
        session, day_start(as_of + timedelta(days=1), tz),
        day_start(as_of - timedelta(days=lim.accept_days), tz),
        day_start(as_of - timedelta(days=lim.handle_days), tz),
        still_late=lambda c: due(c) < as_of, limit=OVERDUE_LISTED)
    listed = sorted(
        (Late(c.tracking_no, short(c.category), STAGE_NAMES[c.stage], due(c).isoformat(),
              (as_of - due(c)).days) for c in late.oldest if not c.restricted),
        key=lambda x: (-x.days, x.tracking_no))
    return late.accept, late.handle, late.reports, listed


def _words(r: WeekRow) -> tuple[str, str]:
    """What a letter says: its subject and its text (as staff corrected it, if they did)."""
    return r.subject, r.new_text if r.new_text is not None else r.text


def themes(rows: Sequence[WeekRow], links: Sequence[tuple[int, int]], short: Callable[[str], str],
           *, threshold: float, ngram: int, limit: int = THEMES_LISTED) -> list[Theme]:
    """The period's themes (``handlers.digest.themes``): letters about one matter, each like
    the theme's first letter by the repeat matcher's measure (``ngram``-character shingles) at
    ``threshold`` or :data:`~handlers.digest.themes.THEME_JACCARD`, whichever is stricter, or
    linked to it at intake (the same writer, the same event). A 举报 takes no part: it is never
    quoted, and a theme naming one would point at it. CPU work: run it in a thread."""
    from handlers.digest.themes import THEME_JACCARD, leaders, shingle

    letters = sorted((r for r in rows if not r.restricted),
                     key=lambda r: (r.received_at, r.id))[-THEME_LETTERS:]
    at = {r.id: i for i, r in enumerate(letters)}
    # A campaign's copies are often word for word the same: each text is shingled once.
    texts = list(dict.fromkeys(map(_words, letters)))
    shingled = dict(zip(texts, shingle(texts, ngram), strict=True))
    linked: list[list[int]] = [[] for _ in letters]
    outside: dict[int, set[int]] = {}
    for a, b in links:
        if a in at and b in at and at[b] < at[a]:
            linked[at[a]].append(at[b])
        elif a in at and b not in at:
            outside.setdefault(at[a], set()).add(b)
    lead = leaders([shingled[_words(r)] for r in letters], linked, max(threshold, THEME_JACCARD))
    groups: dict[int, list[WeekRow]] = {}
    earlier: Counter[int] = Counter()
    for i, head in enumerate(lead):
        groups.setdefault(head, []).append(letters[i])
        earlier[head] += len(outside.get(i, ()))
    clusters = [(head, members) for head, members in groups.items() if len(members) >= THEME_MIN]
    # The largest first; only those listed are masked for their sample (the tagger's work).
    clusters.sort(key=lambda hm: (-len(hm[1]), hm[1][0].tracking_no))
    found = []
    for head, members in clusters[:limit]:
        first = members[0]
        category = Counter(r.category for r in members).most_common(1)[0][0]
        text = _words(first)[1]
        found.append(Theme(
            size=len(members), category=short(category),
            sample=excerpt(mask(text or first.subject or "", [first.from_name]), 80),
            tracking_nos=[r.tracking_no for r in members[:5]], earlier=earlier[head]))
    return found


async def collect(session: AsyncSession, period: Period, *, accept_days: int, handle_days: int,
                  tz: ZoneInfo, now: datetime, short: Callable[[str], str],
                  rows: Sequence[WeekRow] | None = None, threshold: float, ngram: int
                  ) -> Leading:
    """Everything leaders read of ``period`` (``rows``: its rows, when already read)."""
    lim = Limits(accept_days, handle_days, tz)
    as_of = min(period.last, day_of(now, tz))
    start, end = period.start(tz), period.end(tz)
    if rows is None:
        rows = [r async for r in digests.week_rows(session, start, end)]
    three, punctual = await rates(session, period, as_of, lim)
    late_a, late_h, late_reports, listed = await overdue(session, as_of, lim, short)
    links = await digests.week_links(session, start, end)
    found = await asyncio.to_thread(themes, rows, links, short, threshold=threshold, ngram=ngram)
    return Leading(first_day=period.first.isoformat(), last_day=period.last.isoformat(),
                   as_of=as_of.isoformat(), rates=three, on_time=punctual,
                   overdue_accept=late_a, overdue_handle=late_h, overdue_reports=late_reports,
                   overdue=listed, themes=found)
