"""The audit log page: who did what, when, across all submissions and sign-ins.

For supervisors and admins only (the log names reports and the people who opened them).
Filters by person, action and day; newest first, paged by keyset. Read-only: the log is written
where things happen (``storage.events``), never from here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web.console import auth
from bot.web.console.present import (
    ACTIONS,
    CHANNEL,
    KIND,
    ROLE_NAMES,
    category_name,
    local,
)
from bot.web.console.security import sees_reports
from bot.web.keys import RUNTIME
from bot.web.params import query_day, query_int
from handlers.text import excerpt
from storage import audit
from storage.models import Event
from storage.workflow import STATUS

PAGE = 100


def _filter(request: web.Request, tz: ZoneInfo) -> audit.AuditFilter:
    q = request.query
    action = q.get("action", "")
    return audit.AuditFilter(
        actor=q.get("actor", "").strip()[:64],
        action=action if action in ACTIONS else "",
        since=query_day(q, "from", "起始日期", tz),
        until=query_day(q, "to", "截止日期", tz, end=True),
    )


LABELS = {"channel": "渠道", "category": "类别", "measure": "措施", "kind": "性质",
          "auto": "自动邮件", "message_id": "邮件编号", "text": "内容", "from": "原为",
          "to": "改为", "unit": "转办单位", "reason": "理由", "what": "查看方式",
          "user": "账号", "role": "角色", "ip": "IP 地址", "letters": "举报编号", "q": "搜索词",
          "satisfaction": "评价", "comment": "评价意见",
          "raw": "原始记录编号", "outbox": "邮件编号", "purpose": "邮件类型",
          "tracking_no": "受理编号", "action": "操作", "due": "期限", "days": "延期天数",
          "into": "并入"}
WHAT = {"page": "页面", "raw": "原始邮件", "file": "附件", "preview": "附件预览",
        "export": "导出", "api": "接口", "list": "列表", "search": "搜索"}
ACTORS = {"system": "系统", "citizen": "来信人"}  # the rest are staff account names


def _value(key: str, value: Any) -> str:
    """A detail value in the words staff use (status, role, channel and category names)."""
    if isinstance(value, bool):  # e.g. whether a rating came with a comment
        return "有" if value else "无"
    if isinstance(value, dict):  # a reclassification: the new category, measure and kind
        return " ".join(_value(k, v) for k, v in value.items() if v)
    if isinstance(value, list):  # the letters a list view showed: all of them, by number
        return f"{'、'.join(map(str, value))}（共 {len(value)} 件）"
    text = str(value)
    if key == "category":
        return category_name(text)
    if key == "kind":
        return KIND.get(text, text)
    if key == "channel":
        return CHANNEL.get(text, text)
    if key == "what":
        return WHAT.get(text, text)
    if key in ("from", "to", "role"):
        return STATUS.get(text) or ROLE_NAMES.get(text) or category_name(text)
    return excerpt(text, 80)


def _detail(event: Event) -> str:
    """One short line from the event's details, in Chinese; a note's or reply's text cut short."""
    d: dict[str, Any] = event.detail or {}
    return "；".join(f"{LABELS.get(k, k)}：{_value(k, v)}" for k, v in d.items()
                    if v not in (None, "", [], {}))


async def show(request: web.Request) -> web.Response:
    user = auth.current(request)
    if not sees_reports(user):
        raise web.HTTPForbidden(text="审计日志仅主管和管理员可以查看。")
    rt = request.app[RUNTIME]
    tz_name = rt.settings.digest.timezone
    f = _filter(request, ZoneInfo(tz_name))
    before = query_int(request.query, "before", "翻页位置")
    async with rt.sessions() as db:
        rows, next_before = await audit.page(db, f, before=before, limit=PAGE)
    lines = [{"at": local(e.at, tz_name, "%Y-%m-%d %H:%M:%S"), "actor": ACTORS.get(e.actor, e.actor),
              "action": ACTIONS.get(e.action, e.action), "submission_id": e.submission_id,
              "tracking_no": tn, "detail": _detail(e)} for e, tn in rows]
    kept = {k: v for k, v in request.query.items() if k in ("actor", "action", "from", "to") and v}
    more = f"?{urlencode({**kept, 'before': next_before})}" if next_before else None
    return await auth.render(request, "console/audit.html", {
        "lines": lines, "more": more, "query": kept, "actions": ACTIONS,
        "first": "?" + urlencode(kept) if before else None})


def setup(app: web.Application) -> None:
    app.router.add_get("/console/audit", show)
