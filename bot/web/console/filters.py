"""Reading the queue filter from a query string (shared by the list, the export and the API).

Bad values are ignored rather than refused: a filter link that has gone stale should still show
a list, just a wider one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from bot.runtime import Runtime
from bot.web.console.present import CHANNEL, KIND, STATUS
from bot.web.console.security import sees_reports
from storage.models import User
from storage.queue import VIEWS, QueueFilter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FILTER_KEYS = ("category", "measure", "kind", "status", "channel", "from", "to", "review",
               "overdue", "restricted", "assignee", "q", "view")


def day_start(value: str, tz: ZoneInfo) -> datetime | None:
    """The start of a YYYY-MM-DD day in the console's timezone; None for anything else."""
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d")
    except ValueError:
        return None
    return day.replace(tzinfo=tz)


def day_end(value: str, tz: ZoneInfo) -> datetime | None:
    """The end (exclusive) of a YYYY-MM-DD day: a "to" date includes that whole day."""
    start = day_start(value, tz)
    return start + timedelta(days=1) if start else None


def _choice(value: str, allowed: object) -> str | None:
    return value if value and value in allowed else None  # type: ignore[operator]


def parse(query: MultiMapping[str], rt: Runtime, user: User) -> QueueFilter:
    s = rt.settings
    tz = ZoneInfo(s.digest.timezone)
    assignee_raw = query.get("assignee", "")
    assignee: int | None = None
    if assignee_raw == "me":
        assignee = user.id
    elif assignee_raw == "none":
        assignee = 0
    elif assignee_raw.isdigit():
        assignee = int(assignee_raw)
    return QueueFilter(
        category=query.get("category") or None,
        measure=query.get("measure") or None,
        kind=_choice(query.get("kind", ""), KIND),
        status=_choice(query.get("status", ""), STATUS),
        channel=_choice(query.get("channel", ""), CHANNEL),
        received_from=day_start(query.get("from", ""), tz),
        received_to=day_end(query.get("to", ""), tz),
        needs_review=query.get("review") == "1",
        overdue=query.get("overdue") == "1",
        restricted_only=query.get("restricted") == "1",
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
    if not value:
        return None
    micros, _, sid = value.partition("-")
    if not (micros.isdigit() and sid.isdigit()):
        return None
    return EPOCH + timedelta(microseconds=int(micros)), int(sid)


def kept(query: MultiMapping[str]) -> dict[str, str]:
    """The filter part of a query string, to carry into links (next page, export, counts)."""
    return {k: query[k] for k in FILTER_KEYS if query.get(k)}
