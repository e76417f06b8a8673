"""The case workflow: where a letter stands, what staff (or the citizen) may do next, and when
each step is due.

One module for every reader: the console (list, letter page, actions, filters, export, API), the
citizen's status page, the weekly digest and retention. It is pure Python (no SQL, no
SQLAlchemy), so the queries in ``storage`` and the views in ``bot`` share the same statuses,
the same rules and the same clocks.

Statuses: 待受理 (new) → 已受理 (accepted) → 办理中 (in_progress) / 转办 (forwarded, to a
configured unit with a due date) → 已办结 (resolved, with the written answer, 答复意见); or
不予受理 (rejected) with a reason. After the answer the citizen may ask for 复查 (review), whose
answer may be followed by a request for 复核 (recheck), the last stage. Resolved can be reopened
and rejected reconsidered.

What may happen is a table of named actions (:data:`ACTIONS`): from which statuses, to which
status, which fields it needs, and which notice (告知) it gives the citizen. The console's
status form, the write API and the citizen's review request all go through :func:`check`, so
one set of rules and one set of Chinese messages serve them all.

Clocks (信访工作条例; all calendar days, 日, in the configured time zone, the day of the event
not counted): a letter is accepted or refused within ``accept_days`` of receipt; a case is
handled within ``handle_days`` of its acceptance (not of its receipt), once extended by at most
``MAX_EXTENSION_DAYS`` with a written reason; the citizen may ask for 复查 within
``REVIEW_DAYS`` of the answer and it is answered within ``REVIEW_DAYS``; 复核 the same after the
复查 answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

# Where a case stands (``Submission.status``), in the words staff and the leadership read, in
# the console, its exports, the digest mail and its XLSX.
STATUS = {
    "new": "待受理", "accepted": "已受理", "in_progress": "办理中", "resolved": "已办结",
    "rejected": "不予受理", "forwarded": "转办",
    "review": "复查中", "reviewed": "复查已答复", "recheck": "复核中", "rechecked": "复核已答复",
    "merged": "已并单",
}
# Where a case stands as the citizen reads it on the status page: a name and what it means.
CITIZEN_STAGES = {
    "new": ("待受理", "工作人员正在阅读您的来信，将在受理期限内决定是否受理。"),
    "accepted": ("已受理", "您的来信已受理，正在交办。"),
    "in_progress": ("办理中", "有关部门正在办理。"),
    "resolved": ("已办结", "已经办理完毕，答复意见见下方。欢迎您对办理结果作出评价。"),
    "rejected": ("不予受理", "经审查，您反映的事项不属于受理范围，原因和可以反映的渠道见下方的不予受理告知。"),
    "forwarded": ("已转办", "您反映的事项已转交有权处理的单位办理。"),
    "review": ("复查中", "已收到您的复查请求，正在复查。"),
    "reviewed": ("复查已答复", "复查意见见下方。"),
    "recheck": ("复核中", "已收到您的复核请求，正在复核。"),
    "rechecked": ("复核已答复", "复核意见见下方。复核意见为最终意见。"),
    "merged": ("已并案办理", "您反映的事项与另一件来信是同一事项，已合并到该件一并办理，"
                        "办理进度见下方。"),
}
NEW = "new"
ACCEPTED = "accepted"
RESOLVED = "resolved"
FORWARDED = "forwarded"
REJECTED = "rejected"
REVIEW = "review"
REVIEWED = "reviewed"
RECHECK = "recheck"
RECHECKED = "rechecked"
MERGED = "merged"  # closed by 并单: ``Submission.merged_into_id`` points at the carrying case

MAX_EXTENSION_DAYS = 30
REVIEW_DAYS = 30
# Where the handling clock (accepted_at + handle_days, extended) runs.
HANDLING = ("accepted", "in_progress", "forwarded")
# Not closed: a clock runs. The first three are listed in this order so that a status index is
# read as ranges.
OPEN_STATUSES = ("new", "accepted", "in_progress", "forwarded", "review", "recheck")
CLOSED_STATUSES = ("resolved", "rejected", "reviewed", "rechecked", "merged")
# A case may be merged (并单) into another while both are still before the answer.
MERGEABLE = ("new", "accepted", "in_progress", "forwarded")


class WorkflowError(Exception):
    """An action the workflow forbids, or one asked for without what it needs. The message
    is Chinese and tells staff (or the citizen, or an API client) what to do."""


@dataclass(frozen=True)
class Action:
    """Something staff (or the citizen) do to a case."""

    name: str
    label: str  # as staff read it
    sources: tuple[str, ...]  # the statuses it may be done in
    target: str | None  # the status it leads to; None: the status does not change
    needs: tuple[str, ...] = ()  # reason, unit, due, reply
    notice: str | None = None  # the notice (告知) kind it gives the citizen
    citizen: bool = False  # the citizen may ask for it on the status page


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("accept", "受理", ("new",), "accepted", notice="accept"),
    Action("reject", "不予受理", ("new", "accepted"), "rejected", ("reason",), "reject"),
    Action("forward", "转办", ("new", "accepted", "in_progress"), "forwarded", ("unit", "due"),
           "forward"),
    Action("start", "开始办理", ("accepted",), "in_progress"),
    Action("extend", "延期", HANDLING, None, ("reason",), "extend"),
    Action("resolve", "办结并答复", HANDLING, "resolved", ("reply",), "answer"),
    Action("reopen", "重新办理", ("resolved",), "in_progress", ("reason",)),
    Action("reconsider", "重新审查是否受理", ("rejected",), "new", ("reason",)),
    Action("request_review", "申请复查", ("resolved",), "review", ("reason",), "review_received",
           citizen=True),
    Action("answer_review", "复查答复", ("review",), "reviewed", ("reply",), "review_answer"),
    Action("request_recheck", "申请复核", ("reviewed",), "recheck", ("reason",),
           "recheck_received", citizen=True),
    Action("answer_recheck", "复核答复", ("recheck",), "rechecked", ("reply",), "recheck_answer"),
    # The forwarding unit's answer (办理结果), recorded by staff; the basis of the answer to
    # the citizen (the 办结 form's draft). Recorded again, it replaces the earlier one.
    Action("unit_result", "记录承办单位办理结果", ("forwarded",), None, ("result",)),
    Action("merge", "并单", MERGEABLE, "merged", ("into",), "merge"),
)}
FIELD_NAMES = {"reason": "理由", "unit": "承办单位", "due": "办理期限", "reply": "答复内容",
               "result": "承办单位的办理结果", "into": "并入的受理编号"}

# Which status staff may move a case to from each status (derived: one table, ACTIONS).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    s: tuple(dict.fromkeys(a.target for a in ACTIONS.values() if s in a.sources and a.target))
    for s in STATUS
}
NEEDS_REASON = tuple(sorted({a.target for a in ACTIONS.values()
                             if "reason" in a.needs and a.target}))


def status_name(code: str) -> str:
    """A status as staff read it; an unknown code as it is stored."""
    return STATUS.get(code, code)


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES


def available(status: str, *, extended: bool = False) -> list[Action]:
    """The actions staff may take on a case in ``status`` (an extended case: no second one)."""
    return [a for a in ACTIONS.values() if status in a.sources
            and not (a.name == "extend" and extended)]


def action_to(current: str, target: str) -> str | None:
    """The action that moves a case from ``current`` to ``target`` (the console's older form
    names the status it wants), or None."""
    return next((a.name for a in ACTIONS.values() if current in a.sources and a.target == target),
                None)


# -- clocks --------------------------------------------------------------------------------

class CaseDates(Protocol):
    """What the clocks are computed from: the dates a submission stores."""

    status: str
    received_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None  # when the answer (答复意见) was given
    extended_days: int | None
    forward_due: date | None
    review_requested_at: datetime | None
    review_answered_at: datetime | None
    recheck_requested_at: datetime | None
    recheck_answered_at: datetime | None


def day_of(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day ``moment`` falls on in ``tz``."""
    return moment.astimezone(tz).date()


def after_days(moment: datetime, days: int, tz: ZoneInfo) -> date:
    """The last day of a period of ``days`` calendar days that starts at ``moment``: the day of
    the event is not counted (the period runs from the next day), as Chinese law counts 日."""
    return day_of(moment, tz) + timedelta(days=days)


def day_ends(day: date, tz: ZoneInfo) -> datetime:
    """The first moment after ``day`` in ``tz``: a deadline on ``day`` has passed from then."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)


def accept_by(received_at: datetime, accept_days: int) -> datetime:
    """When the acceptance decision is due, as an instant (the queries' form: see cutoff)."""
    return received_at + timedelta(days=accept_days)


def handle_by(received_at: datetime, accepted_at: datetime | None, accept_days: int,
              handle_days: int) -> datetime:
    """When handling is due as an instant, projected from the acceptance deadline until the
    letter is accepted (the overdue query's form)."""
    return (accepted_at or accept_by(received_at, accept_days)) + timedelta(days=handle_days)


def cutoff(now: datetime, days: int) -> datetime:
    """The moment a clock of ``days`` must have started before to have run out at ``now``:
    the form the queries use ("received before the cut-off" = overdue)."""
    return now - timedelta(days=days)


@dataclass(frozen=True)
class Clocks:
    """Every deadline of one case, as calendar days, and which of them has passed."""

    accept_due: date
    handle_due: date | None  # from acceptance, extended; None before acceptance or if refused
    forward_due: date | None  # the unit's due date
    review_request_by: date | None  # the citizen may ask for 复查 until then
    review_due: date | None  # the 复查 is answered by then
    recheck_request_by: date | None
    recheck_due: date | None
    accept_overdue: bool
    handle_overdue: bool
    review_overdue: bool

    @property
    def overdue(self) -> bool:
        return self.accept_overdue or self.handle_overdue or self.review_overdue

    def due(self, status: str) -> date | None:
        """The deadline staff work to now: acceptance while new, then handling, then the
        review stage's; None for a closed case."""
        if status == NEW:
            return self.accept_due
        if status in HANDLING:
            return self.handle_due
        if status == REVIEW:
            return self.review_due
        if status == RECHECK:
            return self.recheck_due
        return None


def due_soon(clock: Clocks, status: str, today: date, days: int) -> bool:
    """Whether the deadline staff work to now falls within ``days`` days from ``today`` (and
    has not passed): the queue marks it, the morning reminder lists it."""
    due = clock.due(status)
    return due is not None and today <= due <= today + timedelta(days=days)


def handle_due(accepted_at: datetime | None, extended_days: int | None, handle_days: int,
               tz: ZoneInfo) -> date | None:
    """The handling deadline: ``handle_days`` after acceptance, plus the extension."""
    if accepted_at is None:
        return None
    return after_days(accepted_at, handle_days + (extended_days or 0), tz)


def clocks(case: CaseDates, accept_days: int, handle_days: int, tz: ZoneInfo,
           now: datetime) -> Clocks:
    """Every clock of ``case`` at ``now``."""
    today = day_of(now, tz)
    status = case.status
    accept = after_days(case.received_at, accept_days, tz)
    handle = (None if status == REJECTED else
              handle_due(case.accepted_at, case.extended_days, handle_days, tz))

    def window(start: datetime | None) -> date | None:
        return after_days(start, REVIEW_DAYS, tz) if start else None

    review_due = window(case.review_requested_at)
    recheck_due = window(case.recheck_requested_at)
    stage_due = review_due if status == REVIEW else recheck_due if status == RECHECK else None
    return Clocks(
        accept_due=accept, handle_due=handle,
        forward_due=case.forward_due if status == FORWARDED else None,
        review_request_by=window(case.resolved_at) if status == RESOLVED else None,
        review_due=review_due,
        recheck_request_by=window(case.review_answered_at) if status == REVIEWED else None,
        recheck_due=recheck_due,
        accept_overdue=status == NEW and today > accept,
        handle_overdue=status in HANDLING and handle is not None and today > handle,
        review_overdue=stage_due is not None and today > stage_due,
    )


# -- the rules of an action ----------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    """An action as asked for: by the console's form, the API's JSON or the status page."""

    action: str
    reason: str = ""
    unit: str = ""
    due: str = ""  # YYYY-MM-DD
    reply: str = ""
    days: str = ""  # the extension's length; empty: the most allowed
    result: str = ""  # the forwarding unit's answer (办理结果)
    into: str = ""  # merge: the tracking number of the case that carries this one on


class MergeTarget(Protocol):
    """What the merge rules read of the case a letter is merged into."""

    id: int
    tracking_no: str
    status: str
    restricted: bool


@dataclass(frozen=True)
class Change:
    """What an allowed action does: the submission's new values and the notice's facts."""

    action: Action
    values: dict[str, object]
    facts: dict[str, object]  # what the notice names (dates as date objects)


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip()) if len(text.strip()) == 10 else _bad_day(field)
    except ValueError:
        return _bad_day(field)


def _bad_day(field: str) -> date:
    raise WorkflowError(f"“{field}”应为日期，格式为 年-月-日，例如 2026-03-01。")


def check(case: CaseDates, req: Request, *, units: tuple[str, ...] | list[str],
          accept_days: int, handle_days: int, tz: ZoneInfo, now: datetime,
          target: MergeTarget | None = None) -> Change:
    """Whether ``req`` may be done to ``case`` at ``now``, and what it changes; raises
    :class:`WorkflowError` with a message that says what is wrong (an unknown action, one the
    status does not allow, a missing reason, a date in the past, a second extension, a review
    asked for too late, a merge into an unknown, closed or differently restricted case...).
    ``target``: for a merge, the case named by ``req.into`` (None: there is none)."""
    action = ACTIONS.get(req.action)
    if action is None:
        known = "、".join(f"{a.name}（{a.label}）" for a in ACTIONS.values())
        raise WorkflowError(f"未知的操作“{req.action[:40]}”。可用的操作：{known}。")
    status = case.status
    if status not in action.sources:
        raise WorkflowError(f"此件当前状态为“{status_name(status)}”，不能“{action.label}”。")
    for need in action.needs:
        if not str(getattr(req, need)).strip():
            raise WorkflowError(f"“{action.label}”需要填写{FIELD_NAMES[need]}。")
    today = day_of(now, tz)
    clock = clocks(case, accept_days, handle_days, tz, now)
    values: dict[str, object] = {}
    facts: dict[str, object] = {}
    if action.target is not None:
        values["status"] = action.target
    if status == NEW and action.target not in (None, NEW):
        values["accepted_at"] = now  # the acceptance decision (accept, reject or forward)
    handle = clock.handle_due or after_days(now, handle_days, tz)  # handle_due(now, None, ...)
    if action.name in ("accept", "forward"):
        facts["handle_due"] = handle
    if action.name == "forward":
        unit = req.unit.strip()
        if unit not in units:
            raise WorkflowError(f"承办单位“{unit[:40]}”不在配置的单位名单中，请从名单中选择："
                                f"{'、'.join(units)}。")
        due = _day(req.due, "办理期限")
        if due < today:
            raise WorkflowError(f"办理期限 {due} 已经过去，请填写今天（{today}）或以后的日期。")
        if due > handle:
            raise WorkflowError(f"交给承办单位的期限不能晚于本件的办结期限 {handle}。")
        # A new forwarding: the unit is reminded of its own due date, and answers afresh.
        values.update(forwarded_to=unit, forward_due=due, unit_reminded_at=None,
                      unit_result=None, unit_result_at=None)
        facts.update(unit=unit, due=due)
    if action.name == "extend":
        if case.extended_days:
            raise WorkflowError(f"此件已经延期过一次（{case.extended_days} 日），"
                                "依照《信访工作条例》只能延期一次。")
        days = _extension_days(req, clock.handle_due, today)
        assert clock.handle_due is not None  # HANDLING statuses were accepted
        values.update(extended_days=days, extension_reason=req.reason.strip())
        facts.update(days=days, handle_due=clock.handle_due + timedelta(days=days))
    if action.name == "resolve":
        values["resolved_at"] = now
        facts["request_by"] = after_days(now, REVIEW_DAYS, tz)
    if action.name in ("request_review", "request_recheck"):
        by = clock.review_request_by if action.name == "request_review" else clock.recheck_request_by
        stage = "复查" if action.name == "request_review" else "复核"
        if by is None or today > by:
            raise WorkflowError(f"申请{stage}的期限（答复后 {REVIEW_DAYS} 日内"
                                f"{f'，即 {by} 前' if by else ''}）已过，不能再申请{stage}。")
        field = "review_requested_at" if action.name == "request_review" else "recheck_requested_at"
        values[field] = now
        facts["due"] = after_days(now, REVIEW_DAYS, tz)
    if action.name == "answer_review":
        values["review_answered_at"] = now
        facts["request_by"] = after_days(now, REVIEW_DAYS, tz)
    if action.name == "answer_recheck":
        values["recheck_answered_at"] = now
    if action.name == "reopen":
        values["resolved_at"] = None
    if action.name == "unit_result":
        values.update(unit_result=req.result.strip(), unit_result_at=now)
    if action.name == "merge":
        carrier = check_merge(case, req.into, target)
        values["merged_into_id"] = carrier.id
        facts["into"] = carrier.tracking_no
    return Change(action, values, facts)


def check_merge(case: CaseDates, into: str, target: MergeTarget | None) -> MergeTarget:
    """The case ``case`` may be merged into, or a :class:`WorkflowError` saying why not: it
    must exist, be another case, still be open before its answer, and be as confidential as
    this one (a 举报 merged into an ordinary case would show its writer's follow-ups to every
    reviewer; an ordinary letter merged into a 举报 would tie its writer to the report)."""
    shown = into.strip()[:40]
    if target is None:
        raise WorkflowError(f"没有受理编号为“{shown}”的来信，请核对要并入的受理编号。")
    if target.id == getattr(case, "id", None):
        raise WorkflowError("不能把一件来信并入它自己，请填写另一件来信的受理编号。")
    if target.status not in MERGEABLE:
        raise WorkflowError(f"{target.tracking_no} 当前状态为“{status_name(target.status)}”，"
                            "只能并入尚未办结的来信。")
    if bool(target.restricted) != bool(getattr(case, "restricted", False)):
        raise WorkflowError("举报件只能与举报件并单，普通来信只能与普通来信并单。")
    return target


def _extension_days(req: Request, current: date | None, today: date) -> int:
    """How long an extension is: the days given, or the days up to the new deadline given, or
    the most allowed; 1 to MAX_EXTENSION_DAYS."""
    assert current is not None
    if req.due.strip():
        new = _day(req.due, "新的办结期限")
        if new < today:
            raise WorkflowError(f"新的办结期限 {new} 已经过去，请填写以后的日期。")
        days = (new - current).days
    elif req.days.strip():
        text = req.days.strip()
        days = int(text) if text.isascii() and text.isdigit() and len(text) < 4 else -1
    else:
        days = MAX_EXTENSION_DAYS
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise WorkflowError(f"延期不能超过 {MAX_EXTENSION_DAYS} 日（原办结期限 {current}，"
                            f"最晚可延至 {current + timedelta(days=MAX_EXTENSION_DAYS)}）。")
    return days
