"""One submission (/console/s/{id}): the letter, its sender, classification, follow-ups, files,
history and the forms for every action; plus the downloads of its files and raw mail.

Reports (举报) are shown to supervisors and admins only, and every view of one — page, file or
raw mail — is written to the audit log before the content is sent.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.web.console import auth, present
from bot.web.console.actions import TRANSITIONS, kinds_for_form
from bot.web.console.queue import staff_names, summarize
from bot.web.console.security import PREVIEW_TYPES, download_headers, restricted, sees_reports
from bot.web.keys import RUNTIME
from storage import events, queue
from storage.db import utcnow
from storage.models import Submission, User


def _id(request: web.Request, key: str = "id") -> int:
    value = request.match_info[key]
    if not value.isdigit():
        raise web.HTTPNotFound()
    return int(value)


async def load(request: web.Request) -> Submission:
    async with request.app[RUNTIME].sessions() as db:
        sub = await queue.get(db, _id(request))
    if sub is None:
        raise web.HTTPNotFound()
    return sub


async def audit_report_view(request: web.Request, sub: Submission, what: str) -> None:
    """Write the audit event before any report content leaves the server."""
    user = auth.current(request)
    if sub.kind == "report":
        async with request.app[RUNTIME].sessions.begin() as db:
            await events.record(db, sub.id, user.name, "report-viewed", {"what": what})


def _top(sub: Submission) -> list[tuple[str, float]]:
    raw = (sub.top or {}).get("top") or []
    return [(present.category_name(str(c), sub.taxonomy_version), float(p)) for c, p in raw[:5]]


def _history(evs: list, names: dict[int, str], tz: str) -> list[dict]:
    return [{"at": present.local(e.at, tz), "actor": e.actor,
             "action": present.ACTIONS.get(e.action, e.action), "detail": e.detail or {}}
            for e in evs]


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user: User = auth.current(request)
    sub = await load(request)
    hidden = restricted(sub, user)
    if not hidden:
        await audit_report_view(request, sub, "page")
    names, staff = await staff_names(rt)
    async with rt.sessions() as db:
        evs = await events.for_submission(db, sub.id)
        fus = [] if hidden else await queue.followups(db, sub.id)
        atts = [] if hidden else await queue.attachments(db, sub.id)
        raw = None if hidden else await queue.raw_mail(db, sub.id)
    tz = rt.settings.digest.timezone
    context = {
        "sub": sub,
        "row": summarize(sub, user, rt, names, utcnow()),
        "hidden": hidden,
        "can_act": not hidden,
        "sees_reports": sees_reports(user),
        "quoted": bool(sub.new_text) and sub.new_text != sub.text,
        "top": _top(sub),
        "followups": [{"at": present.local(f.received_at, tz), "f": f} for f in fus],
        "attachments": [{"a": a, "preview": a.content_type in PREVIEW_TYPES} for a in atts],
        "raw_id": raw.id if raw else None,
        "history": _history(evs, names, tz),
        "transitions": [(s, present.STATUS[s]) for s in TRANSITIONS.get(sub.status, ())],
        "categories": present.categories(),
        # A letter classified under an earlier report: its numbers are not this report's, so
        # the form preselects none of them.
        "same_report": present.active_catalog().is_current(sub.taxonomy_version),
        "kinds": kinds_for_form(),
        "staff": staff,
        "statuses": present.STATUS,
        "channels": present.CHANNEL,
        "local": lambda v: present.local(v, tz),
    }
    return await auth.render(request, "console/submission.html", context)


async def _attachment(request: web.Request, inline: bool) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    async with rt.sessions() as db:
        att = await queue.attachment(db, _id(request, "att"))
        sub = await queue.get(db, att.submission_id) if att else None
    if att is None or sub is None or sub.id != _id(request):
        raise web.HTTPNotFound()
    if restricted(sub, user):
        raise web.HTTPForbidden()
    if inline and att.content_type not in PREVIEW_TYPES:
        raise web.HTTPNotFound()
    path = Path(rt.settings.intake.attachments_dir) / att.sha256[:2] / att.sha256
    if not path.is_file():
        raise web.HTTPNotFound()
    await audit_report_view(request, sub, f"attachment {att.id}")
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
        row = await queue.raw_mail(db, sub.id)
    if row is None or row.raw is None:
        raise web.HTTPNotFound()
    await audit_report_view(request, sub, "raw mail")
    headers = download_headers(f"{sub.tracking_no}.eml.txt", "text/plain; charset=utf-8")
    return web.Response(body=row.raw, headers=headers)


def setup(app: web.Application) -> None:
    app.router.add_get("/console/s/{id}", show)
    app.router.add_get("/console/s/{id}/raw", raw)
    app.router.add_get("/console/s/{id}/files/{att}", download)
    app.router.add_get("/console/s/{id}/files/{att}/preview", preview)
