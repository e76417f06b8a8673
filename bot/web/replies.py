"""The public page of published replies (公开答复): /replies, for everyone, no sign-in.

Lists what supervisors published (storage.public_replies: masked, checked by a person, with the
citizen's consent, never a 举报), grouped by the report's category and measure, as the
report's own headings name them. Mobile-first like every citizen page (templates/web/base.html).
"""

from __future__ import annotations

from itertools import groupby
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from bot.web.keys import RUNTIME
from handlers import categories
from storage import public_replies

OTHER = {"other": "其他", "unclassified": "未分类"}


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    async with rt.sessions() as db:
        rows = await public_replies.listed(db)
    titles, measures = categories.titles(), categories.measure_texts()
    tz = ZoneInfo(rt.settings.digest.timezone)
    groups = []
    for cid, in_category in groupby(rows, key=lambda r: r.category):
        by_measure = [(mid, measures.get(mid or "", ""), list(items))
                      for mid, items in groupby(in_category, key=lambda r: r.measure)]
        groups.append({"id": cid, "title": titles.get(cid) or OTHER.get(cid, cid),
                       "measures": by_measure})
    return aiohttp_jinja2.render_template("web/replies.html", request, {
        "groups": groups, "count": len(rows),
        "day": lambda v: v.astimezone(tz).strftime("%Y-%m-%d")})


def setup(app: web.Application) -> None:
    app.router.add_get("/replies", show)
