"""The week's submissions as an XLSX attachment of the digest (openpyxl, write-only mode).

One row per counted submission of the week (spam and machine mail excluded, as in the figures),
plus a second sheet with the per-category table. Text goes through the same masking as the
excerpts: the file travels by mail, so it carries no phone, ID-card, address or name of a
citizen, and no sender column. Write-only mode streams rows, so a busy week stays cheap.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from handlers.digest.figures import CHANNEL_NAMES, Figures
from handlers.digest.mask import mask
from handlers.text import excerpt
from storage.digests import WeekRow

STATUS_NAMES = {"new": "待受理", "accepted": "已受理", "in_progress": "办理中",
                "resolved": "已办结", "rejected": "不予受理", "forwarded": "已转办"}
HEADER = ("受理编号", "收到时间", "渠道", "类别", "措施", "状态", "标题（已脱敏）",
          "内容摘要（已脱敏）")
TEXT_LIMIT = 300
# Excel refuses control characters other than tab/newline in cell text.
_ILLEGAL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def _clean(text: str) -> str:
    return text.translate(_ILLEGAL)


def _header(ws: Any, names: Iterable[str]) -> list[WriteOnlyCell]:
    cells = []
    for name in names:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = Font(bold=True)
        cells.append(cell)
    return cells


def _row(v: WeekRow, tz: ZoneInfo, figures: Figures) -> list[Any]:
    names = [v.from_name]
    return [
        v.tracking_no,
        v.received_at.astimezone(tz).replace(tzinfo=None),
        CHANNEL_NAMES.get(v.channel, v.channel),
        figures.title_of(v.category),
        v.measure or "",
        STATUS_NAMES.get(v.status, v.status),
        _clean(mask(v.subject or "", names)),
        _clean(excerpt(mask(v.text or "", names), TEXT_LIMIT)),
    ]


def week_workbook(rows: Iterable[WeekRow], figures: Figures) -> tuple[bytes, int]:
    """(XLSX bytes, number of submission rows) for the week's rows (storage.digests.week_rows)."""
    tz = ZoneInfo(figures.timezone)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(f"{figures.week} 来信")
    ws.column_dimensions["B"].width = 18
    ws.column_dimensions["G"].width = 30
    ws.column_dimensions["H"].width = 80
    ws.append(_header(ws, HEADER))
    n = 0
    for values in rows:
        row = _row(values, tz, figures)
        stamp = WriteOnlyCell(ws, value=row[1])
        stamp.number_format = "yyyy-mm-dd hh:mm"
        ws.append([row[0], stamp, *row[2:]])
        n += 1
    summary = wb.create_sheet("分类汇总")
    summary.append(_header(summary, ("类别", "本周", "上周", "增减")))
    for c in figures.categories:
        summary.append([c.title, c.count, c.last_week, c.change])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), n
