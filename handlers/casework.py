"""Applying a casework action to a submission: the one place where it happens.

The console's status form, the write API (``POST /api/v1/submissions/{tracking_no}/actions``)
and the citizen's 复查 / 复核 request on the status page all call :func:`apply`: the rules are
``storage.workflow.check``'s (one set of Chinese messages), the change, its history line (the
audit) and the notice to the citizen (handlers/notices.py) are written in the caller's
transaction, together or not at all.

并单 (``merge``) is one of these actions: the case closes with a pointer to the case that
carries it on (``merged_into_id``), cases merged into it earlier are carried by that case too,
both cases' histories record it, and the merged case's citizen gets a notice naming the
carrying case's number. A case that closes leaves the repeat index (``ctx.repeats``); one that
is reopened returns to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from handlers import notices, tracking
from handlers.step import Context
from handlers.text import one_line
from storage import events, repeats, review_list, submissions, workflow
from storage.clock import utcnow
from storage.models import Notice, Submission
from storage.workflow import Request, WorkflowError

__all__ = ["Outcome", "Request", "WorkflowError", "apply"]
TEXT_MAX = 10_000


@dataclass(frozen=True)
class Outcome:
    message: str  # for staff (the console's notice) or the API client, in Chinese
    notice: Notice | None


def clean(req: Request) -> Request:
    """The request's text bounded: a reason or answer of at most TEXT_MAX characters, a
    unit's name and a date on one line."""
    return Request(action=one_line(req.action, 40), reason=req.reason.strip()[:TEXT_MAX],
                   unit=one_line(req.unit, 200), due=one_line(req.due, 20),
                   reply=req.reply.strip()[:TEXT_MAX], days=one_line(req.days, 10),
                   result=req.result.strip()[:TEXT_MAX],
                   into=one_line(req.into, 64))


async def _merge_target(ctx: Context, req: Request, reads_reports: bool) -> Submission | None:
    """The case a merge names (its tracking number however typed), or None. A viewer who may
    not read 举报 may not merge into one: the link would tie a letter to the report."""
    if req.action != "merge" or not req.into.strip():
        return None
    tn = tracking.find_tracking_no(req.into, ctx.tracking_prefix) or req.into.strip().upper()
    target = await submissions.by_tracking_no(ctx.session, tn)
    if target is not None and target.restricted and not reads_reports:
        raise WorkflowError("您的账号无权并入举报件（举报件仅主管、管理员可以处理）。")
    return target


async def apply(ctx: Context, sub: Submission, req: Request, *, actor: str,
                units: list[str], reads_reports: bool = False) -> Outcome:
    """Do ``req`` to ``sub`` as ``actor`` (a staff name, or "citizen"), or raise
    :class:`WorkflowError` saying why not. The caller has checked who may act on the letter;
    ``reads_reports``: whether the actor may read 举报 (a merge's target is checked here)."""
    req = clean(req)
    now = utcnow()
    target = await _merge_target(ctx, req, reads_reports)
    change = workflow.check(sub, req, units=units, accept_days=ctx.accept_days,
                            handle_days=ctx.handle_days, tz=ZoneInfo(ctx.timezone), now=now,
                            target=target)
    action = change.action
    previous = sub.status  # read now: the UPDATE below refreshes ``sub`` in this session
    await review_list.update_fields(ctx.session, sub.id, **change.values)
    await ctx.session.refresh(sub)
    detail: dict[str, object] = {"action": action.name}
    if action.target is not None:
        detail.update({"from": previous, "to": action.target})
    detail.update({"reason": req.reason or None, "unit": change.values.get("forwarded_to"),
                   "due": str(change.facts["due"]) if "due" in change.facts else None,
                   "days": change.facts.get("days"), "text": req.reply or req.result or None,
                   "into": change.facts.get("into")})
    await events.record(ctx.session, sub.id, actor,
                        "status" if action.target is not None else action.name,
                        {k: v for k, v in detail.items() if v is not None})
    notice = None
    if action.notice is not None:
        facts = {**change.facts, "reason": req.reason, "reply": req.reply,
                 "unit": change.facts.get("unit", req.unit if action.name == "reject" else "")}
        notice = await notices.issue(ctx, sub, action.notice, facts, actor)
    if target is not None:
        await _merged(ctx, sub, target, actor)
    _follow_index(ctx, sub, previous)
    return Outcome(_message(action, sub, notice), notice)


def answer_draft(sub: Submission) -> str:
    """The 答复意见 staff start from once the forwarding unit has answered: its 办理结果,
    introduced by the unit's name (staff edit it before they resolve the case)."""
    if not sub.unit_result:
        return ""
    unit = sub.forwarded_to or "承办单位"
    return f"您反映的问题已转交{unit}办理。经{unit}调查处理，办理结果如下：\n{sub.unit_result}"


async def _merged(ctx: Context, sub: Submission, carrier: Submission, actor: str) -> None:
    """What a merge does besides closing ``sub``: the carrying case records it, the two are
    linked, and cases merged into ``sub`` before are carried by ``carrier`` now (their
    citizens are told the new number)."""
    await events.record(ctx.session, carrier.id, actor, "merge-in",
                        {"tracking_no": sub.tracking_no})
    await repeats.add_links(ctx.session, [(sub.id, carrier.id, repeats.MERGED, None)])
    for earlier_id in await repeats.repoint(ctx.session, sub.id, carrier.id):
        earlier = await review_list.get(ctx.session, earlier_id)
        assert earlier is not None
        await ctx.session.refresh(earlier)
        await events.record(ctx.session, earlier_id, actor, "merge-moved",
                            {"tracking_no": sub.tracking_no, "into": carrier.tracking_no})
        await notices.issue(ctx, earlier, "merge", {"into": carrier.tracking_no}, actor)


def _follow_index(ctx: Context, sub: Submission, previous: str) -> None:
    """Keep the repeat index to the open cases: out when a case closes, back when it reopens."""
    index = ctx.repeats
    if index is None or workflow.is_open(previous) == workflow.is_open(sub.status):
        return
    if not workflow.is_open(sub.status):
        index.remove(sub.id)
    elif not sub.auto and sub.category != "spam":
        index.insert(sub.id, index.sign(sub.subject, sub.text), sub.received_at)


def _message(action: workflow.Action, sub: Submission, notice: Notice | None) -> str:
    done = (f"已{action.label}，状态为“{workflow.status_name(sub.status)}”。"
            if action.target is not None else f"已{action.label}。")
    if notice is None:
        return done
    if notice.message_id:
        return done + f"已生成《{notice.title}》，并通过电子邮件发送给来信人。"
    if notice.not_mailed == notices.SENT_BY_SMS:
        return done + (f"已生成《{notice.title}》，告知显示在来信人的查询页面上，并已短信通知来信人"
                       "（短信只含编号和办理步骤）。电话、信件来信请打印告知送达。")
    return done + (f"已生成《{notice.title}》；来信人没有可用的电子邮箱，告知显示在其查询页面上，"
                   "电话、信件来信请打印告知送达。")
