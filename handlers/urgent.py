"""Urgent letters (issue #19): the classifier's urgency read in one place, the alert mail to the
people on duty, the supervisors' alert when nobody has taken it, and the pipeline step that
queues the first alert in the transaction that files the letter.

Some letters signal a risk that staff must see today: self-harm, a threat of violence, a
gathering at a government office, a danger or a crime happening now. Such a letter is marked
``urgent`` at intake (the store step, from :func:`verdict`), pinned to the top of the console's
queue, and its alert is written to the outbox here with :data:`PRIORITY`, so the outbox worker
sends it before any acknowledgement or digest, and neither the sending caps nor the quiet hours
hold it. The console records who took it ("我来处理"); an urgent letter nobody has taken within
``[urgent] alert_minutes`` alerts the supervisors (bot/workers/urgent.py).

What an alert carries (SECURITY.md): the tracking number, the category, why it is urgent (the
cue categories below, never the letter's words) and the console link; never a name, address,
phone, e-mail or any text of the letter. The duty list is a configured list of addresses, not
console accounts, so it is treated as a digest recipient is: for a 举报 the alert says only
"举报件" and the tracking number, without category or reasons (a reviewer who follows the link
then sees what SECURITY.md lets a reviewer see).

A step module: the storage modules are imported where the database is used (the prepare
processes import the pipeline and must not load SQLAlchemy).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from handlers import categories, tracking
from handlers.mail import compose
from handlers.step import Context, Intake, Step

log = logging.getLogger(__name__)

ALERT = "alert"  # outbox purpose (and Message-ID purpose) of the alert to the duty list
ESCALATE = "escalate"  # ... of the supervisors' alert when nobody took it in time
PRIORITY = 10  # outbox priority of both: claimed before everything else (storage.outbox)

# The cue categories, as staff read them. The classifier (handlers/classify) names them by code;
# a reason not listed here is shown as "其他紧急情形" (a newer classifier's code stays visible).
REASONS = {
    "self_harm": "自伤风险",
    "violence": "暴力威胁",
    "gathering": "聚集上访",
    "danger": "正在发生的危险",
    "crime": "正在发生的犯罪",
}
# The classifier's kinds of risk (handlers/classify/urgent.py CUE_GROUPS labels) as codes.
CODES = {"轻生": "self_harm", "暴力威胁": "violence", "聚集上访": "gathering",
         "正在发生的危险": "danger", "正在发生的犯罪": "crime"}
OTHER_REASON = "其他紧急情形"
STAFF_REASON = "staff"  # marked by staff on the letter page
STAFF_LABEL = "工作人员标记"
MAX_REASONS = 5
SPECIAL = {"other": "其他", "unclassified": "未分类", "spam": "垃圾信息"}


def verdict(result: Any) -> tuple[bool, list[str]]:
    """(urgent, reasons) of a classification. The one place that reads the classifier's
    urgency: ``urgent`` and the kinds of risk (``urgent_kinds()``, never the cues, which quote
    the letter) mapped to :data:`CODES`, and spam is never urgent (a spam mail headed 紧急通知). Reasons are
    kept as short codes (at most 32 characters, five of them), never the letter's words."""
    if result is None or getattr(result, "category", None) == "spam":
        return False, []
    urgent = bool(getattr(result, "urgent", False))
    if not urgent:
        return False, []
    kinds = result.urgent_kinds() if hasattr(result, "urgent_kinds") else ()
    reasons = [CODES.get(k, k)[:32] for k in kinds if k][:MAX_REASONS]
    return True, reasons


def reason_labels(reasons: Iterable[str] | None) -> list[str]:
    """The reasons in Chinese, each once, in order."""
    out: list[str] = []
    for code in reasons or ():
        label = STAFF_LABEL if code == STAFF_REASON else REASONS.get(code, OTHER_REASON)
        if label not in out:
            out.append(label)
    return out


def category_label(category: str | None, version: str | None) -> str:
    """A category as an alert names it: the report's title, or its number."""
    if not category:
        return SPECIAL["unclassified"]
    if category in SPECIAL:
        return SPECIAL[category]
    title = categories.titles(version).get(category)
    return f"（{category}）{title}" if title else f"第{category}类"


def alert_values(*, tracking_no: str, submission_id: int, category: str | None,
                 taxonomy_version: str | None, restricted: bool, reasons: Sequence[str] | None,
                 public_url: str, escalation: bool = False, minutes: int = 0,
                 received_at: datetime | None = None) -> dict[str, object]:
    """What an alert says: for a 举报 only that it is one, never its category or reasons."""
    return {
        "tracking_no": tracking_no,
        "restricted": restricted,
        "category": None if restricted else category_label(category, taxonomy_version),
        "reasons": [] if restricted else reason_labels(reasons),
        "url": f"{public_url}/console/s/{submission_id}",
        "escalation": escalation,
        "minutes": minutes,
        "received_at": received_at,
    }


def alert_mail(ctx: Context, to: str, tag: str, values: dict[str, object]) -> tuple[str, bytes]:
    """(Message-ID, message) of one alert to ``to``; ``tag`` makes its Message-ID unique."""
    escalation = bool(values["escalation"])
    purpose = ESCALATE if escalation else ALERT
    head = "【紧急来信·无人接手】" if escalation else "【紧急来信】"
    subject = f"{head}编号 {values['tracking_no']}，请立即处理"
    message_id = tracking.signed_message_id(ctx.secret, purpose, tag, ctx.message_id_domain)
    text = ctx.templates.get_template("email/urgent.txt").render(values)
    html = ctx.templates.get_template("email/urgent.html").render(values)
    data = compose.build(compose.Outgoing(
        from_addr=ctx.from_addr, from_name=ctx.from_name, to=[("", to)], subject=subject,
        text=text, html=html, message_id=message_id, auto_submitted="auto-generated"))
    return message_id, data


def alert_rows(ctx: Context, recipients: Sequence[str], submission_id: int, tracking_no: str,
               values: dict[str, object], tag: str) -> list[dict[str, object]]:
    """One outbox row per recipient (an outbox row has one), each at :data:`PRIORITY`."""
    purpose = ESCALATE if values["escalation"] else ALERT
    rows = []
    for n, to in enumerate(recipients):
        message_id, data = alert_mail(ctx, to, f"{tracking_no}{tag}{n}", values)
        rows.append({"purpose": purpose, "recipient": to, "sender": ctx.from_addr,
                     "message_id": message_id, "message": data, "submission_id": submission_id,
                     "priority": PRIORITY})
    return rows


async def queue_alert(ctx: Context, *, submission_id: int, tracking_no: str,
                      category: str | None, taxonomy_version: str | None, restricted: bool,
                      reasons: Sequence[str] | None, actor: str = "system") -> int:
    """Queue the duty list's alert of one urgent letter with its history line, in
    ``ctx.session``'s transaction; how many were queued (0 when no duty list is configured:
    the letter is still pinned to the top of the queue, and the history says so)."""
    from storage import events, outbox

    values = alert_values(tracking_no=tracking_no, submission_id=submission_id,
                          category=category, taxonomy_version=taxonomy_version,
                          restricted=restricted, reasons=reasons, public_url=ctx.public_url)
    rows = alert_rows(ctx, ctx.urgent_duty, submission_id, tracking_no, values, "d")
    await outbox.enqueue_many(ctx.session, rows)
    await events.record(ctx.session, submission_id, actor, "urgent-alerted",
                        {"recipients": len(rows)})
    if not rows:
        log.warning("urgent letter %s: no [urgent] duty list, no alert mail", submission_id)
    return len(rows)


async def queue_escalation(ctx: Context, *, submission_id: int, tracking_no: str,
                           category: str | None, taxonomy_version: str | None,
                           restricted: bool, reasons: Sequence[str] | None,
                           recipients: Sequence[str], minutes: int) -> int:
    """Queue the supervisors' alert of a letter nobody took within ``minutes``, with its
    history line, in ``ctx.session``'s transaction (the caller claimed the escalation)."""
    from storage import events, outbox

    values = alert_values(tracking_no=tracking_no, submission_id=submission_id,
                          category=category, taxonomy_version=taxonomy_version,
                          restricted=restricted, reasons=reasons, public_url=ctx.public_url,
                          escalation=True, minutes=minutes)
    rows = alert_rows(ctx, recipients, submission_id, tracking_no, values, "s")
    await outbox.enqueue_many(ctx.session, rows)
    await events.record(ctx.session, submission_id, "system", "urgent-escalated",
                        {"recipients": len(rows)})
    if not rows:
        log.warning("urgent letter %s not taken: no supervisor has an address", submission_id)
    return len(rows)


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    """The step: each new letter the store step marked urgent gets its alert, in the same
    transaction (a follow-up does not: its case was alerted, or is not urgent)."""
    for intake in intakes:
        if not (intake.is_new and intake.urgent and intake.submission_id and intake.tracking_no):
            continue
        c = intake.classification
        _urgent, reasons = verdict(c)
        await queue_alert(ctx, submission_id=intake.submission_id,
                          tracking_no=intake.tracking_no,
                          category=c.category if c is not None else None,
                          taxonomy_version=c.taxonomy_version if c is not None else None,
                          restricted=intake.restricted, reasons=reasons)


STEP = Step("urgent", process_many)
