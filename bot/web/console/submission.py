"""One submission (/console/s/{id}): the letter, its sender, classification, follow-ups, files,
history and the forms for every action; plus the downloads of its files and raw mail.

Reports (举报) are shown to supervisors and admins only, and every view of one — page, file or
raw mail — is written to the audit log before the content is sent (``report_views``). To a
reviewer a report's page shows that it exists and where it stands, and nothing staff wrote about
it: no reason, forwarding unit, note, reply, follow-up, file or record of who read it.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.console import auth, present, report_views
from bot.web.console.actions import kinds_for_form
from bot.web.console.queue import staff_names, summarize
from bot.web.console.security import (
    PREVIEW_TYPES,
    download_headers,
    restricted,
    sees_reports,
    visible_links,
)
from bot.web.keys import RUNTIME
from bot.web.params import path_id
from handlers import casework, public_reply, tracking, urgent
from storage import events, notices, public_replies, repeats, review_list, submissions, workflow
from storage.db import utcnow
from storage.models import Submission, User


async def load(request: web.Request) -> Submission:
    async with request.app[RUNTIME].sessions() as db:
        sub = await review_list.get(db, path_id(request))
    if sub is None:
        raise web.HTTPNotFound()
    return sub


def _top(sub: Submission) -> list[tuple[str, float]]:
    raw = (sub.top or {}).get("top") or []
    return [(present.category_name(str(c), sub.taxonomy_version), float(p)) for c, p in raw[:5]]


def _history(evs: list, tz: str, hidden: bool) -> list[dict]:
    """The letter's events as the page lists them. For a viewer who may not read the letter
    (a reviewer, on a 举报) only what happened and to which status, category or person: no
    reason or forwarding unit (staff write the reporter's name and the accused into them), no
    note or reply text, and not who read the report (that is the audit trail's, not theirs)."""
    out = []
    for e in evs:
        if hidden and e.action == report_views.VIEWED:
            continue
        detail = e.detail or {}
        if hidden:
            detail = {"to": detail["to"]} if "to" in detail else {}
        out.append({"at": present.local(e.at, tz), "actor": e.actor,
                    "action": present.ACTIONS.get(e.action, e.action), "detail": detail})
    return out


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user: User = auth.current(request)
    sub = await load(request)
    hidden = restricted(sub, user)
    if not hidden:
        await report_views.one(request, sub, "page")
    names, staff = await staff_names(rt)
    async with rt.sessions() as db:
        evs = await events.for_submission(db, sub.id)
        fus = [] if hidden else await submissions.followups(db, sub.id)
        atts = [] if hidden else await review_list.attachments(db, sub.id)
        raw = None if hidden else await review_list.raw_mail(db, sub.id)
        given = [] if hidden else await notices.for_submission(db, sub.id)
        public = await _public(db, sub, user)
        links = visible_links(sub, user, await repeats.links_of(db, sub.id))
        merged = visible_links(sub, user, await repeats.merged_into(db, sub.id))
        merged_fus = [(m, f) for m in merged for f in await submissions.followups(db, m.id)]
        carrier = (await review_list.get(db, sub.merged_into_id)
                   if sub.merged_into_id and not hidden else None)
    tz = rt.settings.digest.timezone
    context = {
        "sub": sub,
        "row": summarize(sub, user, rt, names, utcnow()),
        "hidden": hidden,
        "can_act": not hidden,
        "sees_reports": sees_reports(user),
        "restricted_by": present.RESTRICTED_BY.get(sub.restricted_by or "", ""),
        "writer_choice": present.WRITER_CHOICE.get((sub.flags or {}).get("report", ""), ""),
        "quoted": bool(sub.new_text) and sub.new_text != sub.text,
        "top": _top(sub),
        "followups": [{"at": present.local(f.received_at, tz), "f": f} for f in fus],
        # 并单: the linked cases, the cases merged into this one (their writers' follow-ups
        # are handled here) and the case this one was merged into.
        "links": [{"l": link, "kind": present.LINK_KINDS.get(link.kind, link.kind),
                   "status": workflow.status_name(link.status)} for link in links],
        "merged": merged,
        "merged_followups": [{"at": present.local(f.received_at, tz), "f": f,
                              "tracking_no": m.tracking_no} for m, f in merged_fus],
        "carrier": carrier,
        "attachments": [{"a": a, "preview": a.content_type in PREVIEW_TYPES} for a in atts],
        "raw_id": raw.id if raw else None,
        "history": _history(evs, tz, hidden),
        "actions": workflow.available(sub.status, extended=bool(sub.extended_days)),
        "units": rt.settings.casework.units,
        "answer_draft": casework.answer_draft(sub),
        "notices": [{"n": n, "x": x, "at": present.local(x.created_at, tz)}
                    for n, x in enumerate(given, 1)],
        "categories": present.categories(),
        # A letter classified under an earlier report: its numbers are not this report's, so
        # the form preselects none of them.
        "same_report": present.active_catalog().is_current(sub.taxonomy_version),
        "kinds": kinds_for_form(),
        "staff": staff,
        "statuses": workflow.STATUS,
        "mergeable": workflow.MERGEABLE,
        "channels": present.CHANNEL,
        "local": lambda v: present.local(v, tz),
        "public": public,
        # Why it is urgent is read from its text: a 举报's reasons only for those who read it.
        "urgent_reasons": [] if hidden else urgent.reason_labels(sub.urgent_reasons),
        "urgent_since": present.local(sub.urgent_at, tz) if sub.urgent_at else "",
        "urgent_choices": [*urgent.REASONS.items(), (urgent.STAFF_REASON, "其他（工作人员判断）")],
    }
    return await auth.render(request, "console/submission.html", context)


async def _public(db: AsyncSession, sub: Submission, user: User) -> dict[str, Any] | None:
    """The 公开答复 panel for supervisors and admins: why not, or the masked draft to check
    (the text as published, once it is up). None for reviewers and for letters whose writer
    did not consent (nothing to do)."""
    if not sees_reports(user) or not public_reply.consented(sub):
        return None
    row = await public_replies.of(db, sub.id)
    why = public_reply.refusal(sub)
    if why or (row is not None and row.withdrawn_at is None):
        return {"refusal": why, "row": row, "draft": None}
    draft = public_reply.draft(sub, await public_replies.answer_of(db, sub.id))
    return {"refusal": None, "row": row, "draft": draft}


async def _attachment(request: web.Request, inline: bool) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    async with rt.sessions() as db:
        att = await review_list.attachment(db, path_id(request, "att"))
        sub = await review_list.get(db, att.submission_id) if att else None
    if att is None or sub is None or sub.id != path_id(request):
        raise web.HTTPNotFound()
    if restricted(sub, user):
        raise web.HTTPForbidden()
    if inline and att.content_type not in PREVIEW_TYPES:
        raise web.HTTPNotFound()
    path = rt.blobs.path(att.sha256)
    if not path.is_file():
        raise web.HTTPNotFound()
    await report_views.one(request, sub, f"attachment {att.id}")
    content_type = att.content_type if inline else "application/octet-stream"
    return web.Response(body=path.read_bytes(),
                        headers=download_headers(att.filename, content_type, inline=inline))


async def download(request: web.Request) -> web.Response:
    return await _attachment(request, inline=False)


async def preview(request: web.Request) -> web.Response:
    return await _attachment(request, inline=True)


async def raw(request: web.Request) -> web.Response:
    """The original mail as received, as a text/plain download (never rendered as HTML)."""
    user = auth.current(request)
    sub = await load(request)
    if restricted(sub, user):
        raise web.HTTPForbidden()
    async with request.app[RUNTIME].sessions() as db:
        row = await review_list.raw_mail(db, sub.id)
    if row is None or row.raw is None:
        raise web.HTTPNotFound()
    await report_views.one(request, sub, "raw mail")
    headers = download_headers(f"{sub.tracking_no}.eml.txt", "text/plain; charset=utf-8")
    return web.Response(body=row.raw, headers=headers)


async def print_notice(request: web.Request) -> web.Response:
    """A notice as a clean A4 page to print and post, or read out on the phone, for a citizen
    without e-mail (templates/notices/print.html, its print CSS in static/notice-print.css).
    A 举报's notices are for supervisors and admins only, and each view is audited."""
    rt = request.app[RUNTIME]
    user = auth.current(request)
    sub = await load(request)
    if restricted(sub, user):
        raise web.HTTPForbidden()
    n = path_id(request, "n")
    async with rt.sessions() as db:
        notice = await notices.nth(db, sub.id, n)
    if notice is None:
        raise web.HTTPNotFound()
    await report_views.one(request, sub, f"notice {n}")
    tz = rt.settings.digest.timezone
    context = {
        "notice": {"title": notice.title, "text": notice.text,
                   "day": present.local(notice.created_at, tz, "%Y年%m月%d日")},
        "submission_id": sub.id, "tracking_no": sub.tracking_no, "name": sub.from_name,
        "address": sub.postal_address,  # typed in at staff entry
        "status_url": f"{rt.settings.web.public_url}/status",
        "query_code": tracking.query_code_for(rt.secret, sub.tracking_no),
    }
    return aiohttp_jinja2.render_template("notices/print.html", request, context)


def setup(app: web.Application) -> None:
    app.router.add_get("/console/submissions/{id}/notices/{n}/print", print_notice)
    app.router.add_get("/console/s/{id}", show)
    app.router.add_get("/console/s/{id}/raw", raw)
    app.router.add_get("/console/s/{id}/files/{att}", download)
    app.router.add_get("/console/s/{id}/files/{att}/preview", preview)
