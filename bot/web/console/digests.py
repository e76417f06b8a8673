"""Past weekly digests in the console: the list, each one as it was sent, and the figures
leaders read (三率, 按期, the overdue list, themes) for any period picked from/to.

The period's figures are the digest's own (handlers.digest.lead), so the page and the mail
cannot disagree; like the digest they count a 举报 and never name or quote one, so every
console role may read them.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web.console import auth
from bot.web.keys import RUNTIME
from bot.web.params import BadParam, query_day
from handlers.digest import lead
from handlers.digest.figures import category_name, taxonomy_titles
from handlers.digest.weeks import Period
from storage import digests, outbox
from storage.clock import utcnow

MAX_PERIOD_DAYS = 366  # a year: the themes compare the period's letters


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


def _period(request: web.Request, tz: ZoneInfo) -> Period:
    """The from/to days asked for (400 naming the field when malformed); default: the last
    seven days up to today."""
    today = utcnow().astimezone(tz).date()
    first = query_day(request.query, "from", "开始日期", tz)
    last = query_day(request.query, "to", "结束日期", tz)
    to = last.date() if last else today
    since = first.date() if first else to - timedelta(days=6)
    if to < since:
        raise BadParam("“结束日期”不能早于“开始日期”，请重新选择。")
    if (to - since).days + 1 > MAX_PERIOD_DAYS:
        raise BadParam(f"统计期间最长 {MAX_PERIOD_DAYS} 天，请缩短“开始日期”到“结束日期”的范围。")
    return Period(since, to)


async def index(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    s = rt.settings
    tz = ZoneInfo(s.digest.timezone)
    period = _period(request, tz)
    titles = taxonomy_titles()
    async with rt.sessions() as db:
        runs = await digests.list_runs(db)
        mail = await outbox.digest_mail(db, {r.week: r.outbox_id for r in runs if r.outbox_id})
        start, end = period.start(tz), period.end(tz)
        rows = [r async for r in digests.week_rows(db, start, end)]
        figures = await lead.collect(
            db, period, accept_days=s.intake.accept_days, handle_days=s.intake.handle_days,
            tz=tz, now=utcnow(), short=lambda c: category_name(c, titles)[1], rows=rows,
            threshold=s.repeats.threshold, ngram=s.repeats.ngram)
    status = {r.week: mail_status(bool(r.outbox_id), mail.get(r.week, [])) for r in runs}
    return await auth.render(request, "console/digests.html", {
        "runs": runs, "tz": tz, "mail_status": status, "period": period, "L": figures,
        "received": len(rows), "reports": sum(r.restricted for r in rows),
        "accept_days": s.intake.accept_days, "handle_days": s.intake.handle_days})


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
