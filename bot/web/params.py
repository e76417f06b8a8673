"""Numbers and days from URLs, cookies and forms, read strictly.

Two habits crashed requests: ``str.isdigit()`` accepts "²" and other Unicode digits that
``int()`` refuses, and ``int()`` takes any length while the database's ids are 64-bit (PostgreSQL
refuses a bigger bind, and ``datetime`` arithmetic overflows near the calendar's ends). These
helpers accept ASCII decimal digits only, within the range the value is used in, so a hostile
value becomes a 404 (a path id: no such row) or a 400 that says what to fix (a query value),
never an exception. Parsing a bounded decimal is a few lines; no library adds anything here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

ID_MAX = 2**63 - 1  # the largest id a BIGINT (PostgreSQL) or INTEGER (SQLite) column holds
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")  # 19 digits: every value up to ID_MAX, and no more
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# Days a filter may name: from the Unix epoch (cursors count from it) to a year no letter will
# carry; near 9999 the end of a day or a time zone shift leaves datetime's range.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)


class BadParam(web.HTTPBadRequest):
    """A query parameter the page cannot use; ``message`` tells the user, in Chinese, what to fix.

    The error middleware shows it on the 400 page, or as ``{"error": message}`` under /api/."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message)
        self.message = message


def ascii_int(text: str | None, maximum: int = ID_MAX) -> int | None:
    """``text`` as a non-negative integer when it is ASCII digits and at most ``maximum``."""
    if not text or not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


def path_id(request: web.Request, key: str = "id") -> int:
    """A row id from the URL path; anything that cannot be an id is a row that does not exist."""
    value = ascii_int(request.match_info[key])
    if value is None:
        raise web.HTTPNotFound()
    return value


def query_int(query: Mapping[str, str], key: str, label: str,
              maximum: int = ID_MAX) -> int | None:
    """An optional integer query parameter: None when absent or empty, 400 when malformed."""
    text = query.get(key, "")
    if not text:
        return None
    value = ascii_int(text, maximum)
    if value is None:
        raise BadParam(f"参数“{label}”（{key}）应为不超过 {maximum} 的非负整数，请检查网址。")
    return value


def query_day(query: Mapping[str, str], key: str, label: str, tz: ZoneInfo,
              end: bool = False) -> datetime | None:
    """The start (or, with ``end``, the exclusive end) of a YYYY-MM-DD day in ``tz``; None when
    absent or empty, 400 when it is not such a day between FIRST_DAY and LAST_DAY."""
    text = query.get(key, "").strip()
    if not text:
        return None
    match = _DAY.fullmatch(text)
    try:
        day = date(*(int(g) for g in match.groups())) if match else None
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise BadParam(f"“{label}”（{key}）应为 {FIRST_DAY} 至 {LAST_DAY} 之间的日期，"
                       f"格式为 年-月-日，例如 2026-03-01。")
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    return start + timedelta(days=1) if end else start
