"""Reminders: each morning's mail to staff of their cases due soon and overdue, and the
forwarding unit's reminder of its due date. Composed here, queued through the outbox; the
schedule is the worker's (bot/workers/reminders.py).

Who gets what. Each assignee gets the open cases assigned to them; each supervisor every open
case; a case is listed when the deadline staff work to now (``workflow.Clocks.due``: acceptance,
handling, the 复查 / 复核 answer) is within ``due_soon_days`` or has passed. One mail per person
and day, none when nothing is due. A unit is reminded ``unit_remind_days`` before its due date,
at its configured address, else the case's assignee.

举报 (SECURITY.md): a reminder names a restricted case by its tracking number, category, status
and deadline only, which every role may see; never its subject, writer or text. A unit reminder
sent to an assignee who may not read the 举报 does not name the unit either (the forwarding unit
is the 举报's content). No reminder carries a letter's text.

Reminder mail is held in the outbox during the quiet hours (``QUIET_PURPOSES``), so nothing goes
out at night even when a reminder is queued late or retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from handlers import tracking
from handlers.mail import compose
from handlers.step import Context
from handlers.text import one_line
from storage import events, outbox, workflow
from storage import reminders as store
from storage.models import Submission, User

MORNING = "remind"  # outbox purpose (and Message-ID purpose) of the staff's morning mail
UNIT = "unitremind"  # ... of the forwarding unit's reminder
QUIET_PURPOSES = (MORNING, UNIT)
REPORT_ROLES = ("supervisor", "admin")  # who may read a 举报 (bot/web/console/security.py)
SEES_ALL = ("supervisor",)  # who is reminded of every open case, not only their own


@dataclass(frozen=True)
class Line:
    """One case in a reminder."""

    tracking_no: str
    category: str
    status: str
    due: date
    late_days: int  # > 0: overdue by that many days
    subject: str | None  # None for a 举报
    url: str


@dataclass(frozen=True)
class Timing:
    """What the clocks need: the configured lengths, zone and now."""

    accept_days: int
    handle_days: int
    tz: ZoneInfo
    now: datetime

    @property
    def today(self) -> date:
        return workflow.day_of(self.now, self.tz)


def due_lines(cases: list[Submission], t: Timing, soon_days: int, public_url: str,
              category_name: Callable[[str, str | None], str]) -> dict[int, Line]:
    """The cases due within ``soon_days`` or overdue, by id, each as a reminder line."""
    out = {}
    for sub in cases:
        clock = workflow.clocks(sub, t.accept_days, t.handle_days, t.tz, t.now)
        due = clock.due(sub.status)
        if due is None:
            continue
        late = (t.today - due).days
        if late <= 0 and not workflow.due_soon(clock, sub.status, t.today, soon_days):
            continue
        out[sub.id] = Line(
            tracking_no=sub.tracking_no, category=category_name(sub.category,
                                                                sub.taxonomy_version),
            status=workflow.status_name(sub.status), due=due, late_days=max(late, 0),
            subject=None if sub.restricted else (one_line(sub.subject, 60) or "（无标题）"),
            url=f"{public_url}/console/s/{sub.id}")
    return out


def lines_for(user: User, cases: list[Submission], lines: dict[int, Line]) -> list[Line]:
    """The lines of ``user``'s reminder: every due case for a supervisor, else their own;
    overdue first (most overdue first), then by deadline."""
    mine = [lines[s.id] for s in cases if s.id in lines
            and (user.role in SEES_ALL or s.assignee_id == user.id)]
    return sorted(mine, key=lambda ln: (-ln.late_days, ln.due, ln.tracking_no))


def morning_mail(ctx: Context, user: User, day: date, lines: list[Line]) -> tuple[str, bytes]:
    """(Message-ID, message) of ``user``'s reminder of ``day``."""
    assert user.email
    overdue = [ln for ln in lines if ln.late_days > 0]
    soon = [ln for ln in lines if ln.late_days == 0]
    values = {"name": user.name, "day": day, "overdue": overdue, "soon": soon,
              "public_url": ctx.public_url}
    subject = (f"【办理提醒】{day:%m月%d日}：超期 {len(overdue)} 件，"
               f"即将到期 {len(soon)} 件")
    message_id = tracking.signed_message_id(ctx.secret, MORNING, f"{day:%Y%m%d}u{user.id}",
                                            ctx.message_id_domain)
    return message_id, _build(ctx, user.email, user.name, subject, message_id, "remind", values)


def unit_mail(ctx: Context, sub: Submission, to: str, to_name: str, *, name_unit: bool,
              to_assignee: bool, tz: ZoneInfo) -> tuple[str, bytes]:
    """(Message-ID, message) reminding the forwarding unit (or, for it, the assignee) of the
    unit's due date."""
    assert sub.forward_due is not None
    values = {"tracking_no": sub.tracking_no, "unit": sub.forwarded_to if name_unit else None,
              "due": sub.forward_due, "to_assignee": to_assignee,
              "received": workflow.day_of(sub.received_at, tz),
              "url": f"{ctx.public_url}/console/s/{sub.id}"}
    subject = f"【转办催办】编号 {sub.tracking_no} 的信访事项请于 {sub.forward_due} 前办结并反馈"
    message_id = tracking.signed_message_id(ctx.secret, UNIT, sub.tracking_no,
                                            ctx.message_id_domain)
    return message_id, _build(ctx, to, to_name, subject, message_id, "unit_remind", values)


def _build(ctx: Context, to: str, to_name: str, subject: str, message_id: str, template: str,
           values: Mapping[str, object]) -> bytes:
    text = ctx.templates.get_template(f"email/{template}.txt").render(values)
    html = ctx.templates.get_template(f"email/{template}.html").render(values)
    return compose.build(compose.Outgoing(
        from_addr=ctx.from_addr, from_name=ctx.from_name, to=[(to_name, to)], subject=subject,
        text=text, html=html, message_id=message_id, auto_submitted="auto-generated"))


class AlreadySent(Exception):
    """Another instance queued this reminder first: the transaction is rolled back."""


async def queue_morning(ctx: Context, user: User, day: date, lines: list[Line],
                        now: datetime) -> bool:
    """Queue ``user``'s reminder of ``day`` with its record, in ``ctx.session``'s transaction;
    False when nothing is due for them (recorded all the same: they are done for the day).
    Raises :class:`AlreadySent` when the day's reminder was recorded by someone else."""
    outbox_id = None
    if lines:
        message_id, data = morning_mail(ctx, user, day, lines)
        row = await outbox.enqueue(ctx.session, purpose=MORNING, recipient=user.email or "",
                                   sender=ctx.from_addr, message_id=message_id, message=data)
        outbox_id = row.id
    if not await store.record(ctx.session, day=str(day), user_id=user.id, outbox_id=outbox_id,
                              cases=len(lines), now=now):
        raise AlreadySent(str(day))
    return bool(lines)


async def queue_unit(ctx: Context, sub: Submission, unit_emails: dict[str, str],
                     assignee: User | None, tz: ZoneInfo, now: datetime) -> str | None:
    """Remind ``sub``'s unit of its due date, in ``ctx.session``'s transaction: at the unit's
    address, else its assignee's. Returns to whom ("unit", "assignee") or None (nobody to
    mail: the history says so); raises :class:`AlreadySent` when claimed by someone else."""
    if not await store.mark_unit_reminded(ctx.session, sub.id, now):
        raise AlreadySent(sub.tracking_no)
    unit = sub.forwarded_to or ""
    to, to_name, who, name_unit = unit_emails.get(unit), unit, "unit", True
    if not to and assignee is not None and assignee.email and not assignee.disabled:
        to, to_name, who = assignee.email, assignee.name, "assignee"
        name_unit = not sub.restricted or assignee.role in REPORT_ROLES
    if not to:
        await events.record(ctx.session, sub.id, "system", "unit-reminded", {"sent": False})
        return None
    message_id, data = unit_mail(ctx, sub, to, to_name, name_unit=name_unit,
                                 to_assignee=who == "assignee", tz=tz)
    await outbox.enqueue(ctx.session, purpose=UNIT, recipient=to, sender=ctx.from_addr,
                         message_id=message_id, message=data, submission_id=sub.id)
    await events.record(ctx.session, sub.id, "system", "unit-reminded",
                        {"sent": True, "to": who, "due": str(sub.forward_due)})
    return who
