"""Letters the intake could not file (/console/intake): held for a retry, or quarantined after
``intake.max_attempts`` failures. Nothing is lost, nothing hidden: each stays listed until staff
act, with two actions, each CSRF-checked (the console guard) and written to the audit log:

- "retry": back to pending with its attempts reset (after a fix, or a passing fault);
- "file without acknowledgement": filed as a submission, and no mail is sent to the writer
  (for a letter whose acknowledgement cannot be built or sent).

What the list shows: no letter has been classified yet, so any of them may be a 举报. Reviewers
see metadata only (channel, times, attempts, tracking number) and the kind of error; the error's
full text, which may quote the letter, only supervisors and admins. The letter's content is on
no page until it is filed, and then under the submission page's rules.
"""

from __future__ import annotations

from aiohttp import web

from bot.web.console import auth
from bot.web.console.present import CHANNEL, local
from bot.web.console.security import sees_reports
from bot.web.keys import RUNTIME
from bot.web.params import path_id
from storage import events, raw_intake
from storage.models import RawIntake

PAGE = "/console/intake"
STATE = {"held": "等待重试", "quarantined": "已隔离（需人工处理）"}
ACTIONS = {"retry": ("intake-retry", False, "已放回待处理队列，稍后自动重新处理。"),
           "file": ("intake-file-no-ack", True, "已安排直接登记，不发送确认邮件。")}


def error_kind(error: str | None) -> str:
    """The error's type, from the traceback's last line ("UnicodeEncodeError: ..." →
    "UnicodeEncodeError"): what a reviewer may see without the message, which can quote text."""
    lines = [line for line in (error or "").strip().splitlines() if line.strip()]
    if not lines:
        return "未知错误"
    return lines[-1].split(":", 1)[0].strip()[:100]


def _row(row: RawIntake, tz: str, full: bool) -> dict[str, object]:
    return {"id": row.id, "channel": CHANNEL.get(row.channel, row.channel),
            "received": local(row.received_at, tz), "state": STATE.get(row.state, row.state),
            "attempts": row.attempts,
            "retry_at": local(row.retry_at, tz) if row.state == "held" else "",
            "tracking_no": row.tracking_no or "", "error_kind": error_kind(row.error),
            "error": (row.error or "")[-4000:] if full else None}


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    async with rt.sessions() as db:
        rows = await raw_intake.problem_rows(db, limit=500)
    tz = rt.settings.digest.timezone
    full = sees_reports(user)
    return await auth.render(request, "console/intake_problems.html", {
        "rows": [_row(r, tz, full) for r in rows], "full": full,
        "max_attempts": rt.settings.intake.max_attempts})


async def act(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    action = ACTIONS.get(request.match_info["action"])
    if action is None:
        raise web.HTTPNotFound()
    raw_id = path_id(request)
    event, no_ack, done = action
    async with rt.sessions.begin() as db:
        row = await raw_intake.requeue(db, raw_id, no_ack=no_ack)
        if row is not None:
            await events.record(db, None, user.name, event,
                                {"raw": row.id, "channel": row.channel,
                                 "tracking_no": row.tracking_no})
    if row is None:
        await auth.flash(request, "未完成：这封来信已不在待处理列表中（可能已被处理）。")
    else:
        rt.intake_wakeup.set()
        await auth.flash(request, f"第 {row.id} 号：{done}")
    raise web.HTTPSeeOther(PAGE)


def setup(app: web.Application) -> None:
    app.router.add_get(PAGE, show)
    app.router.add_post(PAGE + "/{id}/{action}", act)
