"""Notices (告知): what the citizen is told at each step of a case, and how it reaches them.

A step of the workflow (storage/workflow.py) names the notice it gives: 受理, 不予受理, 延期,
转办, 答复意见, and the 复查 / 复核 steps. :func:`issue` renders the notice's text from
``templates/notices/<kind>.txt``, stores it (``notices`` table: the status page shows every
notice of a case in order, whatever became of the mail; staff print it for phone and post
letters), then :func:`dispatch` sends it through each channel the citizen can be reached by.
That is e-mail, through the outbox, threaded under the acknowledgement; and for a citizen who
left a mobile number and no e-mail address, a short text (SMS: the tracking number and the step,
as 12345 hotlines do), an outbox row of kind ``sms`` that the outbox worker hands to the
configured gateway (bot/sms.py) with the same retries. An SMS never names content: not the
unit, the reason or the answer, so a 举报's text says no more than its number.

A 举报's notices go to its citizen only, like everything else about it: the text is in the
citizen's mail and on their status page, and in the console for supervisors and admins.
No log line carries it.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers import tracking
from handlers.mail import compose
from handlers.step import Context
from storage import notices as store
from storage import outbox
from storage.clock import utcnow
from storage.models import Notice, Submission
from storage.workflow import MAX_EXTENSION_DAYS, REVIEW_DAYS

PURPOSE = "notice"  # outbox rows of notices (the status page lists notices, not these rows)
TITLES = {
    "accept": "受理告知书",
    "reject": "不予受理告知书",
    "extend": "延期办理告知书",
    "forward": "转办告知书",
    "answer": "信访事项答复意见书",
    "review_received": "复查申请收到告知",
    "review_answer": "复查意见书",
    "recheck_received": "复核申请收到告知",
    "recheck_answer": "复核意见书",
    "merge": "并案办理告知书",
}


def cn_day(day: date) -> str:
    """A date as notices write it: 2026年03月01日."""
    return day.strftime("%Y年%m月%d日")


def render(ctx: Context, sub: Submission, kind: str, facts: dict[str, Any]) -> tuple[str, str]:
    """(title, text) of a notice of ``kind`` about ``sub``."""
    tz = ZoneInfo(ctx.timezone)
    values = {
        "name": sub.from_name, "tracking_no": sub.tracking_no, "subject": sub.subject,
        "received": cn_day(sub.received_at.astimezone(tz).date()),
        "today": cn_day(utcnow().astimezone(tz).date()), "review_days": REVIEW_DAYS,
        "handle_days": ctx.handle_days, "max_extension": MAX_EXTENSION_DAYS,
        **{k: cn_day(v) if isinstance(v, date) else v for k, v in facts.items()},
    }
    text = ctx.templates.get_template(f"notices/{kind}.txt").render(values).strip()
    return TITLES[kind], text


def thread(sub: Submission, ack_id: str | None) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) of a later mail about ``sub``: under the acknowledgement its
    citizen got (RFC 5322 §3.6.4: the parent's references, then the parent), else under the
    citizen's own letter."""
    refs = [r for r in (sub.message_id, ack_id) if r]
    return (refs[-1] if refs else None), refs


async def case_mail(ctx: Context, sub: Submission, *, purpose: str, subject: str, text: str,
                    html: str) -> tuple[str, bytes]:
    """(Message-ID, message) of a mail to ``sub``'s writer about the case, threaded under the
    acknowledgement, with a Message-ID signed for the tracking number so that the citizen's
    answer files as a follow-up; written by a person's decision (RFC 3834 §5:
    ``Auto-Submitted: no``)."""
    assert sub.from_addr
    message_id = tracking.signed_message_id(ctx.secret, purpose, sub.tracking_no,
                                            ctx.message_id_domain)
    in_reply_to, refs = thread(sub, await store.ack_message_id(ctx.session, sub.id))
    data = compose.build(compose.Outgoing(
        from_addr=ctx.from_addr, from_name=ctx.from_name,
        to=[(sub.from_name or "", sub.from_addr)], subject=subject, text=text, html=html,
        message_id=message_id, in_reply_to=in_reply_to, references=refs,
        auto_submitted="no",
    ))
    return message_id, data


def mail_values(ctx: Context, sub: Submission) -> dict[str, Any]:
    """What every mail about a case names: the citizen, the case, how to look it up."""
    return {
        "name": sub.from_name, "tracking_no": sub.tracking_no, "subject": sub.subject,
        "received_at": sub.received_at, "tz": ZoneInfo(ctx.timezone),
        "query_code": tracking.query_code_for(ctx.secret, sub.tracking_no),
        "status_url": f"{ctx.public_url}/status", "public_url": ctx.public_url,
    }


async def _by_mail(ctx: Context, sub: Submission, notice: Notice) -> None:
    """The notice by e-mail when the citizen left an address that has not bounced."""
    addr = sub.from_addr
    if not addr or "@" not in addr:
        notice.not_mailed = "no address"
        return
    standing = await outbox.standing_many(ctx.session, {addr.lower()},
                                          utcnow() - timedelta(days=1), PURPOSE)
    if standing[addr.lower()][0]:
        notice.not_mailed = "address suppressed after a bounce"
        return
    values = {**mail_values(ctx, sub), "title": notice.title, "body": notice.text}
    subject = f"【{notice.title}】您的来信（编号 {sub.tracking_no}）"
    text = ctx.templates.get_template("notices/mail.txt").render(values)
    html = ctx.templates.get_template("notices/mail.html").render(values)
    message_id, data = await case_mail(ctx, sub, purpose=PURPOSE, subject=subject, text=text,
                                       html=html)
    await outbox.enqueue(ctx.session, purpose=PURPOSE, recipient=addr, sender=ctx.from_addr,
                         message_id=message_id, message=data, submission_id=sub.id)
    notice.message_id = message_id


SMS = "sms"  # outbox purpose of a notice's text message
SENT_BY_SMS = "no address; sent by SMS"  # Notice.not_mailed of a notice that went by SMS
SMS_MAX = 70  # characters: one message of a Chinese SMS (longer ones are split and cost more)
# What happened, as the text names it; never what the notice says (the reason, the unit...).
SMS_STEPS = {
    "accept": "已受理", "reject": "经审查不予受理", "extend": "已延期办理",
    "forward": "已转交有关单位办理", "answer": "已办结并答复", "review_received": "复查申请已收到",
    "review_answer": "复查已答复", "recheck_received": "复核申请已收到",
    "recheck_answer": "复核已答复",
}
_MOBILE = re.compile(r"1[3-9]\d{9}")


def mobile_number(phone: str | None) -> str | None:
    """A mainland mobile number (11 digits) in ``phone`` however typed (spaces, dashes, +86),
    or None: a landline cannot take a text."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if _MOBILE.fullmatch(digits) else None


def sms_text(ctx: Context, sub: Submission, kind: str) -> str:
    """The text of a notice's SMS: tracking number and step, at most SMS_MAX characters."""
    values = {"tracking_no": sub.tracking_no, "step": SMS_STEPS[kind]}
    text = ctx.templates.get_template("notices/sms.txt").render(values).strip()
    if len(text) > SMS_MAX:  # a long commission phone number: the short form
        text = ctx.templates.get_template("notices/sms.txt").render(
            {**values, "short": True}).strip()
    return text[:SMS_MAX]


async def _by_sms(ctx: Context, sub: Submission, notice: Notice) -> None:
    """The notice as a short text when the citizen left a mobile number and no e-mail
    address, and a gateway is configured."""
    phone = mobile_number(sub.phone)
    if notice.message_id or not ctx.sms or phone is None:
        return
    text = sms_text(ctx, sub, notice.kind)
    body = {"phone": phone, "params": {"no": sub.tracking_no, "step": SMS_STEPS[notice.kind]},
            "text": text}
    message_id = tracking.signed_message_id(ctx.secret, SMS, sub.tracking_no,
                                            ctx.message_id_domain)
    await outbox.enqueue(ctx.session, purpose=SMS, recipient=phone, sender=SMS,
                         message_id=message_id,
                         message=json.dumps(body, ensure_ascii=False).encode(),
                         submission_id=sub.id)
    notice.not_mailed = SENT_BY_SMS


async def dispatch(ctx: Context, sub: Submission, notice: Notice) -> None:
    """Send a stored notice through every channel that reaches its citizen (in the caller's
    transaction: the outbox delivers). The status page shows it in any case."""
    await _by_mail(ctx, sub, notice)
    await _by_sms(ctx, sub, notice)


async def issue(ctx: Context, sub: Submission, kind: str, facts: dict[str, Any],
                actor: str) -> Notice:
    """Render, store and dispatch a notice of ``kind`` about ``sub`` in ``ctx.session``'s
    transaction."""
    title, text = render(ctx, sub, kind, facts)
    notice = await store.add(ctx.session, submission_id=sub.id, kind=kind, title=title,
                             text=text, actor=actor)
    await dispatch(ctx, sub, notice)
    await ctx.session.flush()
    return notice
