"""Past weekly digests in the console: the list, and each one as it was sent."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web.console import auth
from bot.web.keys import RUNTIME
from storage import digests, outbox


def mail_status(queued: bool, mail: list[tuple[str, str | None]]) -> str:
    """What became of one week's digest mail, honestly: sent, waiting, or failed and why."""
    if not queued:
        return "未发送"
    if not mail:
        return "发信记录已删除"
    failed = [error or "" for state, error in mail if state in ("failed", "bounced")]
    if failed:
        return f"发送失败 {len(failed)}/{len(mail)} 封：{failed[0][:200]}"
    sent = sum(state == "sent" for state, _ in mail)
    if sent == len(mail):
        return f"已发送（{sent} 封）"
    waiting = [error for state, error in mail if state in ("pending", "sending")]
    if waiting:
        last = next((e for e in waiting if e), None)
        return f"待发送 {len(waiting)}/{len(mail)} 封" + (f"（上次：{last[:200]}）" if last else "")
    return f"已发送 {sent}/{len(mail)} 封，其余已标记为不再发送"


async def index(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    async with rt.sessions() as db:
        runs = await digests.list_runs(db)
        mail = await outbox.digest_mail(db, {r.week: r.outbox_id for r in runs if r.outbox_id})
    status = {r.week: mail_status(bool(r.outbox_id), mail.get(r.week, [])) for r in runs}
    return await auth.render(request, "console/digests.html",
                             {"runs": runs, "tz": ZoneInfo(rt.settings.digest.timezone),
                              "mail_status": status})


async def show(request: web.Request) -> web.Response:
    """The stored page of one week; served as its own document (it carries its own layout)."""
    rt = request.app[RUNTIME]
    async with rt.sessions() as db:
        html = await digests.get_html(db, request.match_info["week"])
    if html is None:
        raise web.HTTPNotFound()
    resp = web.Response(text=html, content_type="text/html")
    # The stored page styles itself inline (it is the mail's HTML); allow that, and nothing else.
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/console/digests", index)
    app.router.add_get(r"/console/digests/{week:\d{4}-W\d{2}}", show)
