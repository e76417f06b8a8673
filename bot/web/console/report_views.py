"""The audit trail of 举报 views: who read which report's content, where, and when.

SECURITY.md promises that every view of a report's content by the staff allowed to read it
(supervisors and admins) is in the audit log, written before the content leaves the server.
A letter's own page, its files, its raw mail and its API record are one event on that letter
(``report-viewed``, shown in its history to supervisors and admins). A list, a search, an export
or an API page that shows several reports' content is one event for that view, naming the
viewer and every report it showed by tracking number (``reports-listed``, on the audit page), so
that browsing the queue does not bury each letter's history under list views. Reviewers never
see report content, so their views write nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from bot.web.console import auth
from bot.web.console.security import confidential, restricted
from bot.web.keys import RUNTIME
from storage import events
from storage.models import Submission

VIEWED = "report-viewed"  # one letter's content
LISTED = "reports-listed"  # several letters' content in one list, search, export or API page
QUERY_MAX = 100  # characters of a search kept in the audit line


async def one(request: web.Request, sub: Submission, what: str) -> None:
    """Audit a view of one letter's content (a no-op for a letter that is not a report)."""
    if confidential(sub):
        user = auth.current(request)
        async with request.app[RUNTIME].sessions.begin() as db:
            await events.record(db, sub.id, user.name, VIEWED, {"what": what})


async def many(request: web.Request, subs: Iterable[Submission], what: str,
               query: str = "") -> None:
    """Audit a view that showed the content of every report among ``subs`` to its viewer."""
    user = auth.current(request)
    shown = [s.tracking_no for s in subs if confidential(s) and not restricted(s, user)]
    if not shown:
        return
    detail: dict[str, object] = {"what": what, "letters": shown}
    if query.strip():
        detail["q"] = query.strip()[:QUERY_MAX]
    async with request.app[RUNTIME].sessions.begin() as db:
        await events.record(db, None, user.name, LISTED, detail)
