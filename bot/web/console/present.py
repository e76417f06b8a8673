"""Words and dates as staff see them: Chinese names of codes, local times, due dates.

The category titles come from the published report (the classifier's taxonomy); if that part
cannot be loaded the console still works and shows the bare category numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from handlers.categories import active as active_catalog
from handlers.categories import taxonomy
from handlers.names import CHANNEL as CHANNEL  # re-exported: one table, console and digest
from storage import workflow
from storage.models import Submission
from storage.workflow import STATUS as STATUS
from storage.workflow import Clocks

if TYPE_CHECKING:
    from handlers.classify.taxonomy import Taxonomy

log = logging.getLogger(__name__)

ROLE_NAMES = {"reviewer": "审核员", "supervisor": "主管", "admin": "管理员"}
KIND = {"complaint": "投诉", "suggestion": "建议", "report": "举报", "inquiry": "咨询",
        "praise": "表扬", "spam": "垃圾信息"}
SPECIAL_CATEGORY = {"other": "其他", "spam": "垃圾信息", "unclassified": "未分类"}
RESTRICTED_BY = {"writer": "来信人选择举报", "classifier": "系统判断可能是举报", "staff": "工作人员设定"}
WRITER_CHOICE = {"real": "实名举报", "anonymous": "匿名举报"}
AUTO = {"auto-reply": "自动回复", "bounce": "退信", "list": "群发邮件"}
# How two linked cases were found (storage/repeats.py).
LINK_KINDS = {"sender": "同一来信人", "content": "内容相似", "merged": "已并单"}
ACTIONS = {
    "received": "登记", "ack-queued": "发送确认邮件", "followup": "补充来信",
    "reclassify": "改分类", "status": "改状态", "assign": "指派", "note": "内部备注",
    "spam": "标记为垃圾信息", "not-spam": "取消垃圾信息标记", "reply": "答复来信人",
    "not-auto": "确认不是自动邮件",
    "report-viewed": "查看举报内容", "reports-listed": "查看举报内容（列表、搜索、导出、接口）",
    "entry": "工作人员录入",
    "restrict": "设为举报（保密）", "unrestrict": "解除举报保密",
    "rated": "来信人评价", "rating-changed": "来信人修改评价", "purged": "到期删除个人信息",
    "login": "登录", "login-failed": "登录失败", "login-throttled": "登录受限（多次失败）",
    "user-added": "添加账号", "user-disabled": "停用账号", "user-enabled": "启用账号",
    "user-role": "更改账号角色", "user-password": "重设账号密码", "token-issued": "签发 API 令牌",
    "password-changed": "修改本人密码", "password-change-failed": "修改密码失败",
    "digest-started": "每周简报开始运行",
    "ack-failed": "确认邮件未发出", "intake-retry": "重新处理来信",
    "intake-file-no-ack": "不发确认邮件直接登记",
    "mail-resend": "重新发送邮件", "mail-dismiss": "发送失败邮件标记为已处理",
    "extend": "延期",
    "unit_result": "记录承办单位办理结果", "unit-reminded": "提醒承办单位",
    "merge-in": "并入来信（并单）", "merge-moved": "随并单改由他件办理",
    "merged-followup": "并入的来信有补充", "unlink": "取消关联",
    "urgent-alerted": "发出紧急来信提醒", "urgent": "标记为紧急", "not-urgent": "解除紧急标记",
    "urgent-taken": "接手紧急来信（我来处理）", "urgent-escalated": "无人接手，提醒主管",
}


@dataclass(frozen=True)
class CategoryInfo:
    id: str
    title: str
    measures: tuple[tuple[str, str], ...]  # (id, text)


def categories() -> tuple[CategoryInfo, ...]:
    """The configured report's categories with their measures, then other and spam."""
    tax = taxonomy()
    built = _built.get("categories")
    if built is None or built[0] is not tax:  # built once per configured report
        built = _built["categories"] = (tax, _categories(tax))
    return built[1]


_built: dict[str, tuple[Taxonomy | None, tuple[CategoryInfo, ...]]] = {}


def _categories(tax: Taxonomy | None) -> tuple[CategoryInfo, ...]:
    tail = (CategoryInfo("other", "其他", ()), CategoryInfo("spam", "垃圾信息", ()))
    if tax is None:  # the console must work without the classifier part
        return tuple(CategoryInfo(str(i), f"第{i}类", ()) for i in range(1, 11)) + tail
    cats = tuple(CategoryInfo(c.id, c.title, tuple((m.id, m.text) for m in c.measures))
                 for c in tax.categories)
    return cats + tail


def category_name(cid: str | None, version: str | None = None) -> str:
    """A category as staff read it. ``version`` is the taxonomy the letter was classified
    under: a letter filed under an earlier report is named by that report's title and says
    so, never by whatever the configured report now numbers the same."""
    if not cid:
        return ""
    if cid in SPECIAL_CATEGORY:
        return SPECIAL_CATEGORY[cid]
    catalog = active_catalog()
    if not catalog.is_current(version):
        title = catalog.titles(version).get(cid)
        return f"（{cid}）{title}（原整改报告）" if title else f"第{cid}类（原整改报告 {version}）"
    info = next((c for c in categories() if c.id == cid), None)
    return f"（{cid}）{info.title}" if info else cid


def measure_ids() -> set[str]:
    return {m for c in categories() for m, _ in c.measures}


def local(value: datetime | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(ZoneInfo(tz)).strftime(fmt) if value else ""


def clocks(sub: Submission, accept_days: int, handle_days: int, tz: str,
           now: datetime) -> Clocks:
    """The workflow's clocks (``storage.workflow``) of one letter."""
    return workflow.clocks(sub, accept_days, handle_days, ZoneInfo(tz), now)


def day(value: date | None) -> str:
    """A deadline as staff read it (the clocks are calendar days)."""
    return value.isoformat() if value else ""
