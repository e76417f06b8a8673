"""A small read-only JSON API for other tools: the queue (same filters as the console) and one
submission. Every request needs ``Authorization: Bearer <token>`` (``feedback-bot user token``);
the guard in ``auth`` checks it. Reports' content is hidden from reviewer tokens as in the console,
and a supervisor's read of a report, alone or in a page of the list, is audited.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.console import auth, filters, report_views
from bot.web.console.queue import staff_names, summarize
from bot.web.console.security import restricted
from bot.web.keys import RUNTIME
from bot.web.params import ascii_int, query_int
from storage import review_list, submissions
from storage.db import utcnow

MAX_LIMIT = 200


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["received_at"] = row["received_at"].isoformat()
    return row


async def list_submissions(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    f = filters.parse(request.query, rt, user)
    limit = min(MAX_LIMIT, max(1, query_int(request.query, "limit", "条数") or 50))
    names, _ = await staff_names(rt)
    async with rt.sessions() as db:
        subs, cursor = await review_list.page(db, f, after=filters.decode_cursor(
            request.query.get("after")), limit=limit)
    await report_views.many(request, subs, "api", f.q)
    now = utcnow()
    items = [_jsonable(summarize(s, user, rt, names, now)) for s in subs]
    return web.json_response({"items": items, "next": filters.encode_cursor(cursor)})


async def one_submission(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    key = request.match_info["key"]
    async with rt.sessions() as db:
        sub_id = ascii_int(key)
        sub = await (review_list.get(db, sub_id) if sub_id is not None
                     else submissions.by_tracking_no(db, key.upper()))
    if sub is None:
        raise web.HTTPNotFound(text='{"error": "not found"}', content_type="application/json")
    names, _ = await staff_names(rt)
    body = _jsonable(summarize(sub, user, rt, names, utcnow()))
    if not restricted(sub, user):
        await report_views.one(request, sub, "api")
        body.update(subject=sub.subject, text=sub.text, new_text=sub.new_text,
                    from_name=sub.from_name, from_addr=sub.from_addr, phone=sub.phone,
                    confidence=sub.confidence, explanation=sub.explanation,
                    forwarded_to=sub.forwarded_to)
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/submissions", list_submissions)
    app.router.add_get("/api/v1/submissions/{key}", one_submission)
