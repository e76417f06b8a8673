"""The service's clock: aware UTC datetimes, as every table stores them, and office hours.

Its own module, without SQLAlchemy, so that code which only composes mail (the intake's
prepare processes) can stamp a date without loading the database layer (about 22 MB).

Every part of the service reads the time through :func:`utcnow`, so a test can move the whole
service to another moment with :func:`travel` (a fixed offset from the real clock: time still
passes, leases and retries still expire) instead of sleeping until a time of day.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC) + _offset


def travel(to: datetime | None) -> None:
    """Make :func:`utcnow` read ``to`` now (and run on from there); None: the real clock."""
    global _offset
    _offset = timedelta(0) if to is None else to - datetime.now(UTC)


def parse_span(span: str) -> tuple[time, time] | None:
    """``"20:00-08:00"`` as (start, end); "" (no quiet hours) as None."""
    if not span:
        return None
    start, _, end = span.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def quiet_until(now: datetime, tz: tzinfo, span: tuple[time, time] | None) -> datetime | None:
    """When the quiet hours ``span`` (local times in ``tz``, e.g. 20:00-08:00 across midnight)
    that ``now`` falls in end, or None when ``now`` is not in them."""
    if span is None or span[0] == span[1]:
        return None
    start, end = span
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 12:00-13:30, within one day
        inside = start <= clock < end
        day = local.date()
    else:  # across midnight: from start until end of the next morning
        inside = clock >= start or clock < end
        day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
