"""A small JSON API for other tools (provincial 信访 platforms, 12345 systems): the queue (same
filters as the console), one submission, and the casework actions on it. Every request needs
``Authorization: Bearer <token>`` (``feedback-bot user token``); the guard in ``auth`` checks it.
One submission carries ``related``, the tracking numbers of the cases linked to it as repeats
(并单), and ``merged_into``. Reports' content and links are hidden from reviewer tokens as in
the console, and a supervisor's read of a
report, alone or in a page of the list, is audited.

``POST /api/v1/submissions/{tracking_no}/actions`` takes ``{"action": "accept" | "reject" |
"extend" | "forward" | "resolve" | "unit_result" | "merge" | ..., "reason", "unit", "due": "YYYY-MM-DD",
"reply", "days", "result", "into": "<tracking number>"}`` (``result``: the forwarding unit's answer, 办理结果; ``into``: the case a merge joins) and goes through the console's own action (``actions.perform``): the same roles, rules,
audit and notices. It answers 200 with the submission, or 400 ``{"error": "<Chinese message>"}``
for anything the workflow forbids or the body gets wrong; never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.console import actions, auth, filters, report_views
from bot.web.console.actions import FIELDS
from bot.web.console.queue import staff_names, summarize
from bot.web.console.security import restricted, visible_links
from bot.web.keys import RUNTIME
from bot.web.params import ascii_int, query_int
from handlers import casework
from storage import repeats, review_list, submissions
from storage.db import utcnow
from storage.models import Submission

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


def _finder(key: str) -> Callable[[AsyncSession], Awaitable[Submission | None]]:
    """How the submission a path names is found: by id (digits) or tracking number."""
    sub_id = ascii_int(key)

    async def find(db: AsyncSession) -> Submission | None:
        if sub_id is not None:
            return await review_list.get(db, sub_id)
        return await submissions.by_tracking_no(db, key.strip().upper()[:64])

    return find


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


NOT_FOUND = "没有这个受理编号的来信。"


async def one_submission(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    async with rt.sessions() as db:
        sub = await _finder(request.match_info["key"])(db)
    if sub is None:
        return _error(404, NOT_FOUND)
    return await _one(request, sub)


async def _one(request: web.Request, sub: Submission) -> web.Response:
    """One submission as JSON; its content only for a viewer who may read it (audited)."""
    rt = request.app[RUNTIME]
    user = auth.current(request)
    names, _ = await staff_names(rt)
    body = _jsonable(summarize(sub, user, rt, names, utcnow()))
    async with rt.sessions() as db:
        links = visible_links(sub, user, await repeats.links_of(db, sub.id))
        carrier = await review_list.get(db, sub.merged_into_id) if sub.merged_into_id else None
    # 并单: the linked cases (a 举报's links only for those who may read 举报) and, for a
    # merged case, the case that carries it on.
    body["related"] = [link.tracking_no for link in links]
    body["links"] = [{"tracking_no": link.tracking_no, "status": link.status, "kind": link.kind,
                      "score": link.score} for link in links]
    body["merged_into"] = (carrier.tracking_no if carrier is not None
                           and not restricted(carrier, user) else None)
    if not restricted(sub, user):
        await report_views.one(request, sub, "api")
        body.update(subject=sub.subject, text=sub.text, new_text=sub.new_text,
                    from_name=sub.from_name, from_addr=sub.from_addr, phone=sub.phone,
                    confidence=sub.confidence, explanation=sub.explanation,
                    forwarded_to=sub.forwarded_to, extension_reason=sub.extension_reason,
                    unit_result=sub.unit_result, postal_address=sub.postal_address,
                    unit_result_at=sub.unit_result_at.isoformat() if sub.unit_result_at else None,
                    answer_draft=casework.answer_draft(sub) or None)
    return web.json_response(body)


async def _action_body(request: web.Request) -> dict[str, str] | str:
    """The action's JSON body as text fields, or what is wrong with it (in Chinese)."""
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return "请求体不是有效的 JSON。请发送 JSON 对象，例如 {\"action\": \"accept\"}。"
    if not isinstance(data, dict):
        return "请求体应为 JSON 对象，例如 {\"action\": \"accept\"}。"
    fields: dict[str, str] = {}
    for key in ("action", *FIELDS):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            return f"字段“{key}”应为字符串。"
        text = str(value)
        if "\x00" in text:
            return f"字段“{key}”含有空字符，请删除后再试。"
        fields[key] = text
    if not fields.get("action", "").strip():
        return "请用字段“action”指明操作，例如 accept、reject、extend、forward、resolve。"
    return fields


async def act(request: web.Request) -> web.Response:
    """Apply one casework action (see the module's docstring)."""
    rt = request.app[RUNTIME]
    user = auth.current(request)
    body = await _action_body(request)
    if isinstance(body, str):
        return _error(400, body)
    try:
        sid, _message = await actions.perform(
            rt, user, "status", _finder(request.match_info["key"]),
            {**body, "action": body["action"].strip()})
    except actions.Refused as exc:
        if exc.status == 404:
            return _error(404, NOT_FOUND)
        return _error(403, "您的账号无权处理此件（举报件仅主管、管理员可以处理）。")
    except actions.ActionError as exc:
        return _error(400, str(exc))
    async with rt.sessions() as db:
        sub = await review_list.get(db, sid)
    assert sub is not None
    return await _one(request, sub)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/submissions", list_submissions)
    app.router.add_get("/api/v1/submissions/{key}", one_submission)
    app.router.add_post("/api/v1/submissions/{key}/actions", act)
