"""ISO weeks in the digest's time zone: naming, bounds, and which week a schedule run covers.

A digest covers one ISO week (Monday 00:00 to the next Monday 00:00) in the configured time zone,
named like ``2026-W47``. The scheduled run at time T covers the last *complete* week before T, so
a Monday 08:00 run covers the week that ended eight hours earlier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_NAME = re.compile(r"^(\d{4})-?W(\d{2})$")


@dataclass(frozen=True, order=True)
class Week:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """``2026-W47`` (or ``2026W47``); ValueError for anything else or a week that does not exist."""
        m = _NAME.match(text.strip().upper())
        if not m:
            raise ValueError(f"not an ISO week like 2026-W47: {text!r}")
        year, number = int(m.group(1)), int(m.group(2))
        date.fromisocalendar(year, number, 1)  # raises ValueError for W53 in a 52-week year
        return cls(year, number)

    @classmethod
    def of(cls, day: date) -> Week:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def shift(self, weeks: int) -> Week:
        return Week.of(self.monday + timedelta(weeks=weeks))

    def start(self, tz: ZoneInfo) -> datetime:
        """Monday 00:00 local time, as an aware UTC datetime."""
        return datetime.combine(self.monday, time(), tzinfo=tz).astimezone(UTC)

    def end(self, tz: ZoneInfo) -> datetime:
        """The next Monday 00:00 local time (exclusive bound), as an aware UTC datetime."""
        return self.shift(1).start(tz)

    @property
    def period(self) -> Period:
        return Period(self.monday, self.sunday)


@dataclass(frozen=True)
class Period:
    """Any run of whole local days, first to last inclusive (the console's from/to picker;
    a week is one)."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("a period ends on or after its first day")

    def start(self, tz: ZoneInfo) -> datetime:
        return day_start(self.first, tz)

    def end(self, tz: ZoneInfo) -> datetime:
        return day_start(self.last + timedelta(days=1), tz)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of ``day`` local time, as an aware UTC datetime."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def week_of(moment: datetime, tz: ZoneInfo) -> Week:
    return Week.of(moment.astimezone(tz).date())


def week_before(moment: datetime, tz: ZoneInfo) -> Week:
    """The last complete week before ``moment`` (a week ending exactly at ``moment`` counts)."""
    return week_of(moment, tz).shift(-1)
