"""Reading the queue filter from a query string (shared by the list, the export and the API).

A choice that is no longer offered (a status, kind or channel name) is ignored: a filter link
that has gone stale should still show a list, just a wider one. A malformed number, day or
page cursor is refused with a 400 naming the parameter (bot.web.params): guessing what it
meant would show a list the user did not ask for.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from bot.runtime import Runtime
from bot.web.console.present import CHANNEL, KIND
from bot.web.console.security import sees_reports
from bot.web.params import BadParam, ascii_int, query_day, query_int
from storage.models import User
from storage.review_list import VIEWS, QueueFilter
from storage.workflow import STATUS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FILTER_KEYS = ("category", "measure", "kind", "status", "channel", "from", "to", "review",
               "overdue", "restricted", "assignee", "q", "view", "urgent")


def _choice(value: str, allowed: Container[str]) -> str | None:
    return value if value and value in allowed else None


def parse(query: MultiMapping[str], rt: Runtime, user: User) -> QueueFilter:
    s = rt.settings
    tz = ZoneInfo(s.digest.timezone)
    assignee_raw = query.get("assignee", "")
    assignee: int | None = None
    if assignee_raw == "me":
        assignee = user.id
    elif assignee_raw == "none":
        assignee = 0
    else:
        assignee = query_int(query, "assignee", "经办人")
    return QueueFilter(
        category=query.get("category") or None,
        measure=query.get("measure") or None,
        kind=_choice(query.get("kind", ""), KIND),
        status=_choice(query.get("status", ""), STATUS),
        channel=_choice(query.get("channel", ""), CHANNEL),
        received_from=query_day(query, "from", "起始日期", tz),
        received_to=query_day(query, "to", "截止日期", tz, end=True),  # the whole "to" day
        needs_review=query.get("review") == "1",
        overdue=query.get("overdue") == "1",
        restricted_only=query.get("restricted") == "1",
        urgent_only=query.get("urgent") == "1",
        assignee_id=assignee,
        q=query.get("q", "")[:200],
        view=_choice(query.get("view", ""), VIEWS) or "default",
        search_restricted=not sees_reports(user),
        accept_days=s.intake.accept_days,
        handle_days=s.intake.handle_days,
    )


def encode_cursor(cursor: tuple[datetime, int] | None) -> str | None:
    if cursor is None:
        return None
    at, sid = cursor
    return f"{(at - EPOCH) // timedelta(microseconds=1)}-{sid}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    """The (received_at, id) a "next page" link carries; a 400 for one we cannot have made."""
    if not value:
        return None
    micros_text, _, sid_text = value.partition("-")
    micros, sid = ascii_int(micros_text), ascii_int(sid_text)
    try:
        if micros is not None and sid is not None:
            return EPOCH + timedelta(microseconds=micros), sid
    except OverflowError:  # past datetime's year 9999
        pass
    raise BadParam("翻页参数（after）无效，请回到列表第一页重新翻页。")


def kept(query: MultiMapping[str]) -> dict[str, str]:
    """The filter part of a query string, to carry into links (next page, export, counts)."""
    return {k: query[k] for k in FILTER_KEYS if query.get(k)}
