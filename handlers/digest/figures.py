"""The numbers of one weekly digest, gathered from storage.digests' aggregate queries.

``collect`` turns one ISO week into a :class:`Figures` value: totals by channel, per category the
count, the change against the previous week and the most mentioned measures, pipeline health
(flow, overdue, medians, satisfaction), what was excluded (spam, machine mail), the 12-week trend,
and masked excerpts for the top categories. Figures is plain data (``as_dict`` is JSON): the
templates, the chart, the XLSX and the ``digests.summary`` column all read the same value, so
the HTML, the plain text and the stored summary cannot disagree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import categories
from handlers.digest import lead
from handlers.digest.lead import Leading
from handlers.digest.mask import mask
from handlers.digest.titles import short_title
from handlers.digest.weeks import Week
from handlers.names import channel_name
from handlers.repeats import DEFAULT_NGRAM, DEFAULT_THRESHOLD
from handlers.text import excerpt
from storage import digests
from storage.clock import utcnow

TREND_WEEKS = 12
TOP_CATEGORIES = 3
EXCERPTS_PER_CATEGORY = 3
TOP_MEASURES = 3
EXTRA_CATEGORY_NAMES = {"other": "其他", "unclassified": "未分类"}
AUTO_NAMES = {"spam": "垃圾信息", "auto-reply": "自动回复", "bounce": "退信", "list": "群发邮件"}
SATISFACTION_ORDER = ("满意", "基本满意", "不满意")
CN_NUMERALS = "一二三四五六七八九十"


@dataclass(frozen=True)
class Options:
    timezone: str = "Asia/Shanghai"
    accept_days: int = 15
    handle_days: int = 60
    public_url: str = "http://127.0.0.1:8080"
    # The repeat matcher's settings ([repeats]): the themes cluster letters by its measure.
    repeats_threshold: float = DEFAULT_THRESHOLD
    repeats_ngram: int = DEFAULT_NGRAM


@dataclass
class MeasureCount:
    id: str
    text: str
    count: int


@dataclass
class CategoryRow:
    id: str
    title: str
    short: str
    count: int
    last_week: int
    change: int
    change_pct: float | None
    link: str
    measures: list[MeasureCount] = field(default_factory=list)
    excerpts: list[str] = field(default_factory=list)


@dataclass
class Health:
    received: int
    accepted: int
    resolved: int
    forwarded: int
    overdue_accept: int
    overdue_handle: int
    median_accept_days: float | None
    median_resolve_days: float | None
    satisfaction_week: dict[str, int]
    satisfaction_all: dict[str, int]
    satisfied_pct_all: float | None


@dataclass
class Figures:
    week: str
    first_day: str  # local dates, ISO
    last_day: str
    timezone: str
    total: int
    last_week_total: int
    channels: list[tuple[str, str, int]]  # (id, name, count)
    categories: list[CategoryRow]
    health: Health
    excluded: list[tuple[str, str, int]]  # (kind, name, count)
    excluded_total: int
    # 举报 among the counted letters: their number, by category (short label), never their words
    reports: int
    reports_by_category: list[tuple[str, int]]
    trend_weeks: list[str]
    trend: dict[str, list[int]]  # category id → counts per week, oldest first
    public_url: str
    lead: Leading  # 三率, 按期, the overdue list, the week's themes (handlers.digest.lead)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def short_titles(self) -> dict[str, str]:
        """Category id → short label, the first row of an id as listed."""
        titles: dict[str, str] = {}
        for c in self.categories:
            titles.setdefault(c.id, c.short)
        return titles

    def title_of(self, category: str) -> str:
        return self.short_titles().get(category, category)


# -- category names ----------------------------------------------------------------------------
def taxonomy_titles() -> dict[str, str]:
    """Category id → title from the published report's taxonomy; {} when it cannot be loaded."""
    return categories.titles()


def category_name(cid: str, titles: dict[str, str]) -> tuple[str, str]:
    """(full title, short label) of a category id."""
    if cid in EXTRA_CATEGORY_NAMES:
        return EXTRA_CATEGORY_NAMES[cid], EXTRA_CATEGORY_NAMES[cid]
    ordinal = f"第{CN_NUMERALS[int(cid) - 1]}类" if cid.isdigit() and 0 < int(cid) <= 10 else cid
    title = titles.get(cid)
    if not title:
        return ordinal, ordinal
    return title, f"{ordinal} {short_title(title)}"


# -- gathering ---------------------------------------------------------------------------------
def _pct(now: int, before: int) -> float | None:
    return None if before == 0 else round((now - before) * 100.0 / before, 1)


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400.0, 1)


def _category_rows(volumes: digests.Volumes, last_week: dict[str, int], opts: Options,
                   measure_text: dict[str, str]) -> list[CategoryRow]:
    now, measures = volumes.categories, volumes.measures
    titles = taxonomy_titles()
    ids = list(dict.fromkeys([*titles, *sorted(now), *sorted(last_week)]))
    rows = []
    for cid in ids:
        n, b = now.get(cid, 0), last_week.get(cid, 0)
        title, short = category_name(cid, titles)
        top = sorted(((m, k) for (c, m), k in measures.items() if c == cid),
                     key=lambda mk: (-mk[1], mk[0]))[:TOP_MEASURES]
        rows.append(CategoryRow(
            id=cid, title=title, short=short, count=n, last_week=b, change=n - b,
            change_pct=_pct(n, b), link=f"{opts.public_url}/console?category={cid}",
            measures=[MeasureCount(m, excerpt(measure_text.get(m, ""), 40), k) for m, k in top],
        ))
    rows.sort(key=lambda r: (-r.count, -r.last_week, ids.index(r.id)))
    return rows


def samples(rows: Sequence[digests.WeekRow], category: str, prefer_measure: str | None,
            limit: int = EXCERPTS_PER_CATEGORY) -> list[digests.WeekRow]:
    """Representative cases of a category among the week's rows, to quote.

    A restricted letter (举报) is never quoted. Representative = of the category's most
    mentioned measure first, then the most confidently
    classified (unscored last), oldest id first, with at least 10 characters of text. Chosen
    here from the rows the XLSX reads anyway, instead of one query per category.
    """
    def rank(r: digests.WeekRow) -> tuple[int, bool, float, int]:
        preferred = 0 if prefer_measure is not None and r.measure == prefer_measure else 1
        return preferred, r.confidence is None, -(r.confidence or 0.0), r.id

    found = [r for r in rows if r.category == category and not r.restricted
             and len(r.text or "") >= 10]
    return sorted(found, key=rank)[:limit]


async def _add_excerpts(rows: list[CategoryRow], week_rows: Sequence[digests.WeekRow]) -> None:
    top = [r for r in rows if r.count > 0 and r.id not in EXTRA_CATEGORY_NAMES][:TOP_CATEGORIES]
    for row in top:
        prefer = row.measures[0].id if row.measures else None
        quoted = [(r.new_text if r.new_text is not None else r.text or "", r.from_name)
                  for r in samples(week_rows, row.id, prefer)]
        # Mask before cutting: a phone number cut in half by the excerpt would escape the rules.
        # In a thread: the first jieba call loads its dictionary (about a second of CPU).
        row.excerpts = await asyncio.to_thread(_excerpts, quoted)


def _excerpts(quoted: list[tuple[str, str | None]]) -> list[str]:
    """The quotes masked, then cut to excerpts."""
    return [excerpt(mask(text, [name]), 120) for text, name in quoted]


async def _health(session: AsyncSession, week: Week, tz: ZoneInfo, received: int,
                  late: Leading) -> Health:
    start, end = week.start(tz), week.end(tz)
    accepted = await digests.done_in(session, "accepted_at", start, end)
    resolved = await digests.done_in(session, "resolved_at", start, end)
    sat_all = await digests.satisfaction(session, end)
    rated = sum(sat_all.values())
    good = sat_all.get("满意", 0) + sat_all.get("基本满意", 0)
    return Health(
        received=received, accepted=len(accepted), resolved=len(resolved),
        forwarded=await digests.forwarded(session, start, end),
        overdue_accept=late.overdue_accept, overdue_handle=late.overdue_handle,
        median_accept_days=_days(_median([s for s, _rating in accepted])),
        median_resolve_days=_days(_median([s for s, _rating in resolved])),
        satisfaction_week=_ordered(Counter(r for _s, r in resolved if r is not None)),
        satisfaction_all=_ordered(sat_all),
        satisfied_pct_all=round(good * 100.0 / rated, 1) if rated else None,
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    keys = [*SATISFACTION_ORDER, *sorted(k for k in counts if k not in SATISFACTION_ORDER)]
    return {k: counts.get(k, 0) for k in keys if k in counts or k in SATISFACTION_ORDER}


async def collect(session: AsyncSession, week: Week, opts: Options,
                  measure_text: dict[str, str] | None = None,
                  week_rows: Sequence[digests.WeekRow] | None = None) -> Figures:
    """All figures of ``week``; ``measure_text`` maps measure ids to their wording.

    ``week_rows`` are the week's rows (storage.digests.week_rows) when the caller has read them
    already, for the quotes. The week's volumes are one grouped query; last week's per-category
    counts are the next-to-last bucket of the 12-week trend, so that week is not read again.
    """
    tz = ZoneInfo(opts.timezone)
    start, end = week.start(tz), week.end(tz)
    if week_rows is None:
        week_rows = [r async for r in digests.week_rows(session, start, end)]
    weeks = [week.shift(i - TREND_WEEKS + 1) for i in range(TREND_WEEKS)]
    trend = await digests.weekly_trend(session, [w.start(tz) for w in weeks] + [end])
    last_week = {c: counts[-2] for c, counts in trend.items() if counts[-2]}
    volumes = await digests.volumes(session, start, end)
    rows = _category_rows(volumes, last_week, opts, measure_text or measure_texts())
    await _add_excerpts(rows, week_rows)
    excluded = volumes.excluded
    reports = Counter(r.category for r in week_rows if r.restricted)
    short = {r.id: r.short for r in rows}
    leading = await lead.collect(
        session, week.period, accept_days=opts.accept_days, handle_days=opts.handle_days,
        tz=tz, now=utcnow(), short=lambda c: short.get(c) or category_name(c, {})[1],
        rows=week_rows, threshold=opts.repeats_threshold, ngram=opts.repeats_ngram)
    return Figures(
        week=str(week), first_day=week.monday.isoformat(), last_day=week.sunday.isoformat(),
        timezone=opts.timezone, total=volumes.counted,
        last_week_total=sum(r.last_week for r in rows),
        channels=[(c, channel_name(c), n)
                  for c, n in sorted(volumes.channels.items(), key=lambda cn: (-cn[1], cn[0]))],
        categories=rows,
        health=await _health(session, week, tz, volumes.counted, leading),
        excluded=[(k, AUTO_NAMES.get(k, k), n) for k, n in sorted(excluded.items())],
        excluded_total=sum(excluded.values()),
        reports=sum(reports.values()),
        reports_by_category=[(c.short, reports[c.id]) for c in rows if reports[c.id]],
        trend_weeks=[str(w) for w in weeks],
        trend=trend,
        public_url=opts.public_url,
        lead=leading,
    )


def measure_texts() -> dict[str, str]:
    return categories.measure_texts()
