"""Past weekly digests in the console: the list, and each one as it was sent."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web.console import auth
from bot.web.keys import RUNTIME
from storage import digests


async def index(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    async with rt.sessions() as db:
        runs = await digests.list_runs(db)
    return await auth.render(request, "console/digests.html",
                             {"runs": runs, "tz": ZoneInfo(rt.settings.digest.timezone)})


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
