"""The case workflow: where a letter stands, where it may go next, and when each step is due.

One module for every reader: the console (list, letter page, actions, filters, export, API), the
citizen's status page, the weekly digest and retention. It is pure Python (no SQL, no
SQLAlchemy), so the queries in ``storage`` and the views in ``bot`` share the same statuses and
the same clocks.

Statuses: 待受理 (new) → 已受理 (accepted) → 办理中 (in_progress) → 已办结 (resolved), or
不予受理 (rejected) / 转办 (forwarded, to a named unit) with a reason. Resolved can be reopened
and rejected reconsidered.

Clocks (信访工作条例): a letter is accepted or refused within ``accept_days`` of receipt, and a
case is handled within ``handle_days`` of its acceptance, not of its receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Where a case stands (``Submission.status``), in the words staff and the leadership read, in
# the console, its exports, the digest mail and its XLSX.
STATUS = {
    "new": "待受理", "accepted": "已受理", "in_progress": "办理中", "resolved": "已办结",
    "rejected": "不予受理", "forwarded": "转办",
}
# Where a case stands as the citizen reads it on the status page: a name and what it means.
CITIZEN_STAGES = {
    "new": ("待受理", "工作人员正在阅读您的来信，将在受理期限内决定是否受理。"),
    "accepted": ("已受理", "您的来信已受理，正在交办。"),
    "in_progress": ("办理中", "有关部门正在办理。"),
    "resolved": ("已办结", "已经办理完毕。欢迎您对办理结果作出评价。"),
    "rejected": ("不予受理", "经审查，您反映的事项不属于受理范围，答复中说明了原因和可以反映的渠道。"),
    "forwarded": ("已转办", "您反映的事项已转交有权处理的单位办理。"),
}
NEW = "new"
RESOLVED = "resolved"
FORWARDED = "forwarded"
REJECTED = "rejected"

# Which status staff may move a case to from each status.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("accepted", "rejected", "forwarded"),
    "accepted": ("in_progress", "resolved", "forwarded", "rejected"),
    "in_progress": ("resolved", "forwarded"),
    "resolved": ("in_progress",),  # reopened
    "rejected": ("new",),  # reconsidered
    "forwarded": ("in_progress", "resolved"),
}
NEEDS_REASON = ("rejected", "forwarded")
# Not closed: the handling clock runs. Listed in this order so that a status index is read as
# ranges.
OPEN_STATUSES = ("new", "accepted", "in_progress")
CLOSED_STATUSES = ("resolved", "rejected", "forwarded")


def status_name(code: str) -> str:
    """A status as staff read it; an unknown code as it is stored."""
    return STATUS.get(code, code)


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES


def accept_by(received_at: datetime, accept_days: int) -> datetime:
    """When the acceptance decision is due."""
    return received_at + timedelta(days=accept_days)


def handling_starts(received_at: datetime, accepted_at: datetime | None,
                    accept_days: int) -> datetime:
    """When the handling time limit starts to run: at acceptance (信访工作条例: a case is
    handled within 60 days of its 受理, not of its receipt); before the acceptance decision, at
    the latest day it may be taken, so that the projected limit is the latest one possible."""
    return accepted_at or accept_by(received_at, accept_days)


def handle_by(received_at: datetime, accepted_at: datetime | None, accept_days: int,
              handle_days: int) -> datetime:
    """When handling is due (projected from the acceptance deadline until accepted)."""
    return handling_starts(received_at, accepted_at, accept_days) + timedelta(days=handle_days)


def cutoff(now: datetime, days: int) -> datetime:
    """The moment a clock of ``days`` must have started before to have run out at ``now``:
    the form the queries use ("received before the cut-off" = overdue)."""
    return now - timedelta(days=days)


@dataclass(frozen=True)
class Deadlines:
    accept_by: datetime
    handle_by: datetime
    accept_overdue: bool
    handle_overdue: bool

    @property
    def overdue(self) -> bool:
        return self.accept_overdue or self.handle_overdue

    def due(self, status: str) -> datetime:
        """The next deadline: acceptance while new, handling after."""
        return self.accept_by if status == NEW else self.handle_by


def deadlines(status: str, received_at: datetime, accepted_at: datetime | None,
              accept_days: int, handle_days: int, now: datetime) -> Deadlines:
    """A case's two deadlines and whether each has passed at ``now`` with the case still open."""
    accept = accept_by(received_at, accept_days)
    handle = handle_by(received_at, accepted_at, accept_days, handle_days)
    return Deadlines(
        accept, handle,
        accept_overdue=status == NEW and now > accept,
        handle_overdue=is_open(status) and now > handle,
    )
