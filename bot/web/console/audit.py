"""The audit log page: who did what, when, across all submissions and sign-ins.

For supervisors and admins only (the log names reports and the people who opened them).
Filters by person, action and day; newest first, paged by keyset. Read-only: the log is written
where things happen (``storage.events``), never from here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web.console import auth
from bot.web.console.filters import day_start
from bot.web.console.present import ACTIONS, local
from bot.web.console.security import sees_reports
from bot.web.keys import RUNTIME
from handlers.text import excerpt
from storage import audit
from storage.models import Event

PAGE = 100


def _filter(request: web.Request, tz: ZoneInfo) -> audit.AuditFilter:
    q = request.query
    until = day_start(q.get("to", ""), tz)
    action = q.get("action", "")
    return audit.AuditFilter(
        actor=q.get("actor", "").strip()[:64],
        action=action if action in ACTIONS else "",
        since=day_start(q.get("from", ""), tz),
        until=until + timedelta(days=1) if until else None,  # the "to" day is included
    )


def _detail(event: Event) -> str:
    """One short line from the event's details (a note's or reply's text cut short)."""
    d: dict[str, Any] = event.detail or {}
    parts = []
    for key, value in d.items():
        if value in (None, "", [], {}):
            continue
        text = excerpt(str(value), 80) if isinstance(value, str) else str(value)
        parts.append(f"{key}: {text}")
    return "；".join(parts)


async def show(request: web.Request) -> web.Response:
    user = auth.current(request)
    if not sees_reports(user):
        raise web.HTTPForbidden(text="审计日志仅主管和管理员可以查看。")
    rt = request.app[RUNTIME]
    tz_name = rt.settings.digest.timezone
    f = _filter(request, ZoneInfo(tz_name))
    before = request.query.get("before", "")
    async with rt.sessions() as db:
        rows, next_before = await audit.page(
            db, f, before=int(before) if before.isdigit() else None, limit=PAGE)
    lines = [{"at": local(e.at, tz_name, "%Y-%m-%d %H:%M:%S"), "actor": e.actor,
              "action": ACTIONS.get(e.action, e.action), "submission_id": e.submission_id,
              "tracking_no": tn, "detail": _detail(e)} for e, tn in rows]
    kept = {k: v for k, v in request.query.items() if k in ("actor", "action", "from", "to") and v}
    more = f"?{urlencode({**kept, 'before': next_before})}" if next_before else None
    return await auth.render(request, "console/audit.html", {
        "lines": lines, "more": more, "query": kept, "actions": ACTIONS,
        "first": "?" + urlencode(kept) if before else None})


def setup(app: web.Application) -> None:
    app.router.add_get("/console/audit", show)
