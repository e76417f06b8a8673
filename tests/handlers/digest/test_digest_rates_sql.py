"""The digest's on-time rates, counted by the database in groups of local days
(storage.digests.day_index, handlers.digest.lead.rates), against their per-case definition.

Cases are written at the edges the clocks turn on: a second before and after local midnight
(so the UTC instant lies on another day), decided or answered on the deadline day's last second
and on the next day's first, extended by 1 to 30 days, 举报, spam and machine mail (not
counted), refused cases (no handling clock), and cases still open whose deadline has not come.
The reference applies storage.workflow's clocks to each case one by one, as the digest did
before it grouped them. A time zone with daylight saving (days of 23 and 25 hours) is checked
alongside Asia/Shanghai.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from handlers.digest.lead import MAX_EXTENSION, Days, Limits, rates
from handlers.digest.weeks import Period
from storage import submissions
from storage.db import make_engine, sessionmaker
from storage.digests import day_index
from storage.models import Submission
from storage.workflow import after_days, day_of, handle_due

ACCEPT, HANDLE = 15, 60
STATUSES = ("new", "accepted", "in_progress", "forwarded", "resolved", "rejected")


@dataclass
class Case:
    received_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    extended_days: int | None
    status: str
    category: str
    auto: str | None
    restricted: bool

    @property
    def counted(self) -> bool:
        return self.auto is None and self.category != "spam"


def _at(day: date, rng: random.Random, tz: ZoneInfo) -> datetime:
    """A moment of ``day`` in ``tz``, most often a second from its start or its end."""
    edge = rng.choice((time(0, 0, 0), time(0, 0, 1), time(23, 59, 59), None))
    t = edge or time(rng.randrange(24), rng.randrange(60), rng.randrange(60))
    return datetime.combine(day, t, tzinfo=tz).astimezone(UTC)


def _cases(period: Period, tz: ZoneInfo, n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    out = []
    span = (period.last - period.first).days + HANDLE + MAX_EXTENSION + 25
    for _ in range(n):
        received_day = period.last + timedelta(days=2 - rng.randrange(span))
        received = _at(received_day, rng, tz)
        status = rng.choice(STATUSES)
        accepted = resolved = None
        extended = None
        if status != "new":
            accepted = max(received, _at(received_day + timedelta(days=rng.randrange(22)), rng, tz))
        if status in ("accepted", "in_progress", "forwarded", "resolved") and rng.random() < 0.3:
            extended = rng.choice((1, 5, 29, 30))
        if status == "resolved":
            assert accepted is not None
            resolved = _at(day_of(accepted, tz) + timedelta(days=rng.randrange(100)), rng, tz)
        out.append(Case(received, accepted, resolved, extended, status,
                        "spam" if rng.random() < 0.05 else rng.choice("123"),
                        "auto-reply" if rng.random() < 0.05 else None, rng.random() < 0.1))
    # Decided and answered on the deadline day's last second, and on the next day's first.
    for k, last_second in enumerate((True, False) * 2):
        due = period.first + timedelta(days=k)
        moment = (datetime.combine(due, time(23, 59, 59), tzinfo=tz) if last_second
                  else datetime.combine(due + timedelta(days=1), time(), tzinfo=tz))
        got = datetime.combine(due - timedelta(days=ACCEPT), time(12), tzinfo=tz)
        out.append(Case(got.astimezone(UTC), moment.astimezone(UTC), None, None, "accepted",
                        "1", None, k == 0))
        taken = datetime.combine(due - timedelta(days=HANDLE + 30), time(9), tzinfo=tz)
        out.append(Case(taken.astimezone(UTC) - timedelta(days=1), taken.astimezone(UTC),
                        moment.astimezone(UTC), 30, "resolved", "2", None, False))
    return out


def _cohort(cases: list[tuple[date, date | None]], period: Period, as_of: date
            ) -> tuple[int, int]:
    on_time = counted = 0
    for due, done in cases:
        if not period.first <= due <= period.last:
            continue
        if done is not None and done <= due:
            on_time += 1
        elif done is None and due >= as_of:
            continue
        counted += 1
    return on_time, counted


def reference(cases: list[Case], period: Period, as_of: date, tz: ZoneInfo
              ) -> dict[str, tuple[int, int]]:
    """The five rates' (done, of) by storage.workflow's clocks, case by case."""
    counted = [c for c in cases if c.counted]
    start, end = period.start(tz), period.end(tz)

    def day(moment: datetime | None) -> date | None:
        return None if moment is None else day_of(moment, tz)

    response = _cohort([(after_days(c.received_at, ACCEPT, tz), day(c.accepted_at))
                        for c in counted], period, as_of)
    resolution = _cohort([(due, day(c.resolved_at)) for c in counted if c.status != "rejected"
                          and (due := handle_due(c.accepted_at, c.extended_days, HANDLE, tz))],
                         period, as_of)
    decided = [c for c in counted if c.accepted_at and start <= c.accepted_at < end]
    answered = [c for c in counted if c.accepted_at and c.resolved_at
                and start <= c.resolved_at < end]
    return {
        "response": response,
        "resolution": resolution,
        "on_time_accept": (sum(day_of(c.accepted_at, tz) <= after_days(c.received_at, ACCEPT, tz)
                               for c in decided if c.accepted_at), len(decided)),
        "on_time_handle": (sum(day_of(c.resolved_at, tz)
                               <= (handle_due(c.accepted_at, c.extended_days, HANDLE, tz)
                                   or date.min)
                               for c in answered if c.resolved_at), len(answered)),
    }


class Store:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine)

    async def write(self, cases: list[Case]) -> None:
        async with self.sessions.begin() as s:
            await submissions.add_many(s, [{
                "tracking_no": f"FK{i:08d}", "channel": "web", "text": "来信", "status": c.status,
                "category": c.category, "auto": c.auto, "restricted": c.restricted,
                "received_at": c.received_at, "accepted_at": c.accepted_at,
                "resolved_at": c.resolved_at, "extended_days": c.extended_days}
                for i, c in enumerate(cases)])


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    st = Store(db_url)
    yield st
    await st.engine.dispose()


@pytest.mark.parametrize(("tz_name", "first", "days", "as_of_day"), [
    ("Asia/Shanghai", date(2026, 11, 16), 7, 6),  # a week, evaluated on its last day
    ("Asia/Shanghai", date(2026, 11, 16), 3, 1),  # a short period, its deadlines still running
    ("Europe/Berlin", date(2026, 10, 12), 40, 39),  # 40 days across the end of summer time
])
async def test_rates_by_day_groups_equal_the_per_case_clocks(
        store: Store, tz_name: str, first: date, days: int, as_of_day: int) -> None:
    tz = ZoneInfo(tz_name)
    period = Period(first, first + timedelta(days=days - 1))
    cases = _cases(period, tz, 500, seed=days)
    await store.write(cases)
    as_of = first + timedelta(days=as_of_day)
    async with store.sessions() as s:
        three, punctual = await rates(s, period, as_of, Limits(ACCEPT, HANDLE, tz))
    got = {r.key: (r.done, r.of) for r in [*three, *punctual] if r.key != "satisfaction"}
    want = reference(cases, period, as_of, tz)
    assert got == want
    # The fixture reaches every branch: cases on time, late and not yet due in each cohort.
    assert all(0 < done < of for done, of in want.values()), want
    assert any(c.restricted and c.counted for c in cases)


@pytest.mark.parametrize("tz_name", ["Asia/Shanghai", "Europe/Berlin"])
async def test_day_index_is_the_local_day(store: Store, tz_name: str) -> None:
    tz = ZoneInfo(tz_name)
    rng = random.Random(5)
    days = Days.of(date(2026, 10, 20), date(2026, 10, 30), tz)  # Berlin: Oct 25 has 25 hours
    cases = [Case(_at(date(2026, 10, 17) + timedelta(days=rng.randrange(17)), rng, tz),
                  None, None, None, "new", "1", None, False) for _ in range(300)]
    await store.write(cases)
    async with store.sessions() as s:
        rows = (await s.execute(select(Submission.received_at,
                                       day_index(Submission.received_at, days.starts),
                                       day_index(Submission.accepted_at, days.starts)))).all()
    assert len(rows) == len(cases)
    n = len(days.starts) - 1
    for received, index, none in rows:
        offset = (day_of(received, tz) - days.first).days
        assert index == min(max(offset, -1), n), received
        assert none is None
        if 0 <= offset < n:
            assert days.day(index) == day_of(received, tz)
