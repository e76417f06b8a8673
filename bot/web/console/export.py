"""Export of the current queue filter as CSV (UTF-8 with BOM, so Excel reads the Chinese) or
XLSX (openpyxl, write-only mode so memory stays flat).

Spreadsheets execute formulas: a cell that starts with = + - @ is neutralised (OWASP's
"CSV injection" advice), since the text comes from citizens. Reports' content is left out for
reviewers (with the forwarding unit staff wrote), and a supervisor's export of reports is one
event in the audit log naming them.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from aiohttp import web

from bot.web.console import auth, filters, report_views
from bot.web.console.queue import HIDDEN, staff_names, summarize
from bot.web.console.security import download_headers
from bot.web.keys import RUNTIME
from storage import review_list
from storage.db import utcnow
from storage.models import Submission

MAX_ROWS = 100_000
COLUMNS = ("编号", "收到时间", "渠道", "类别", "措施", "性质", "状态", "承办人", "受理期限",
           "办结期限", "超期", "待复核", "标题", "内容", "姓名", "电子邮箱", "电话", "转办单位")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _row(sub: Submission, r: dict) -> list[str]:
    hidden = r["restricted"]
    return [
        sub.tracking_no, r["received"], r["channel_name"], r["category_name"], sub.measure or "",
        r["kind_name"], r["status_name"], r["assignee"], r["accept_by"], r["handle_by"],
        "是" if r["overdue"] else "", "是" if sub.needs_review else "",
        HIDDEN if hidden else sub.subject, "" if hidden else sub.text,
        "" if hidden else (sub.from_name or ""), "" if hidden else (sub.from_addr or ""),
        "" if hidden else (sub.phone or ""), "" if hidden else (sub.forwarded_to or ""),
    ]


def _csv_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


async def _rows(request: web.Request) -> list[list[str]]:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    f = filters.parse(request.query, rt, user)
    names, _staff = await staff_names(rt)
    async with rt.sessions() as db:
        subs = await review_list.iter_all(db, f, MAX_ROWS)
    await report_views.many(request, subs, "export", f.q)
    now = utcnow()
    out = [_row(sub, summarize(sub, user, rt, names, now)) for sub in subs]
    return [[str(v) for v in row] for row in out]


def _filename(ext: str) -> str:
    return f"来信导出-{datetime.now().strftime('%Y%m%d-%H%M')}.{ext}"


async def as_csv(request: web.Request) -> web.Response:
    rows = await _rows(request)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    writer.writerows([_csv_safe(v) for v in row] for row in rows)
    body = "\ufeff" + buf.getvalue()
    return web.Response(body=body.encode("utf-8"),
                        headers=download_headers(_filename("csv"), "text/csv; charset=utf-8"))


async def as_xlsx(request: web.Request) -> web.Response:
    rows = await _rows(request)
    from openpyxl import Workbook  # here, not at start: only exports need it
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("来信")
    ws.append(COLUMNS)
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value))
            cell.data_type = "s"  # text, never a formula
            cells.append(cell)
        ws.append(cells)
    buf = io.BytesIO()
    wb.save(buf)
    ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return web.Response(body=buf.getvalue(), headers=download_headers(_filename("xlsx"), ctype))


def setup(app: web.Application) -> None:
    app.router.add_get("/console/export.csv", as_csv)
    app.router.add_get("/console/export.xlsx", as_xlsx)
