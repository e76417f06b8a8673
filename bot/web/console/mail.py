"""Mail not delivered yet (/console/outbox): waiting, being sent, or failed for good, and why;
whether the provider has paused the outbox or a sending cap holds it, and until when.

Actions, each CSRF-checked and audited in the letter's history: "resend" a failed message (a new
day of retries), "dismiss" it (staff know; it stops making /healthz degraded). Resending an
acknowledgement takes back the letter's "acknowledgement not sent" note.

Who sees what: no message body is shown here to anyone (the outbox holds the exact bytes, which
quote the letter). For a letter reviewers may not read (a 举报), they see the recipient masked,
also inside the relay's answer, which often quotes the address.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.web.console import auth
from bot.web.console.present import local
from bot.web.console.security import restricted
from bot.web.keys import RUNTIME
from bot.web.params import path_id
from bot.workers import outbox as outbox_worker
from handlers.errors import without_addresses
from storage import events, outbox
from storage.db import utcnow
from storage.models import Outbox, Submission, User

PAGE = "/console/outbox"
PURPOSE = {"ack": "确认邮件", "reply": "答复", "digest": "每周简报"}
STATE = {"pending": "等待发送", "sending": "正在发送", "failed": "发送失败"}


def mask(address: str) -> str:
    """``zhang.san@example.com`` → ``z***@example.com``: enough to tell messages apart."""
    local_part, at, domain = address.rpartition("@")
    return f"{local_part[:1]}***@{domain}" if at else "***"


def _row(row: Outbox, sub: Submission | None, user: User, tz: str) -> dict[str, object]:
    hidden = sub is not None and restricted(sub, user)
    recipient, error = row.recipient, row.last_error or ""
    if hidden:  # the relay's answer may quote the address as stored or as sent (IDNA)
        error = without_addresses(error, mask)
        recipient = mask(recipient)
    return {"id": row.id, "purpose": PURPOSE.get(row.purpose, row.purpose),
            "recipient": recipient, "state": row.state,
            "state_name": STATE.get(row.state, row.state), "attempts": row.attempts,
            "next": local(row.next_attempt_at, tz) if row.state == "pending" else "",
            "queued": local(row.created_at, tz), "error": error[:500],
            "submission_id": sub.id if sub else None,
            "tracking_no": sub.tracking_no if sub else ""}


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    async with rt.sessions() as db:
        rows = await outbox.problems(db, limit=500)
        hold = await outbox_worker.hold(rt, db)
        counts = await outbox.counts_by_state(db)
    tz = rt.settings.digest.timezone
    worker = rt.workers.get("outbox")
    s = rt.settings.smtp
    return await auth.render(request, "console/outbox.html", {
        "rows": [_row(r, sub, user, tz) for r, sub in rows],
        "hold": {"until": local(hold.until, tz, "%Y-%m-%d %H:%M:%S"), "reason": hold.reason,
                 "paused": bool(hold.paused)} if hold.until else None,
        "outage": worker.last_error if worker and worker.state == "error" else None,
        "counts": counts, "caps": (s.max_per_minute, s.max_per_day),
        "retry_hours": s.retry_hours})


async def act(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    action = request.match_info["action"]
    if action not in ("resend", "dismiss"):
        raise web.HTTPNotFound()
    row_id = path_id(request)
    async with rt.sessions.begin() as db:
        if action == "resend":
            until = utcnow() + timedelta(hours=rt.settings.smtp.retry_hours)
            row = await outbox.resend(db, row_id, until)
        else:
            row = await outbox.dismiss(db, row_id)
        if row is not None:
            if action == "resend" and row.purpose == "ack" and row.submission_id is not None:
                await outbox.flag_mail_failure(db, row.submission_id, None)
            await events.record(db, row.submission_id, user.name, f"mail-{action}",
                                {"outbox": row.id, "purpose": row.purpose})
    if row is None:
        await auth.flash(request, "未完成：这封邮件已不是发送失败状态。")
    elif action == "resend":
        rt.outbox_wakeup.set()
        await auth.flash(request, f"第 {row.id} 号邮件已重新放入发送队列。")
    else:
        await auth.flash(request, f"第 {row.id} 号邮件已标记为已处理，不再发送。")
    raise web.HTTPSeeOther(PAGE)


def setup(app: web.Application) -> None:
    app.router.add_get(PAGE, show)
    app.router.add_post(PAGE + "/{id}/{action}", act)
