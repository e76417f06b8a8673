"""The workflow module: one table of statuses and actions that every reader's words, rules and
clocks agree on. The clocks are calendar days in the configured time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage import workflow
from storage.workflow import Request, WorkflowError

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
UNITS = ("法院", "公安局")


@dataclass
class Case:
    status: str = "new"
    received_at: datetime = T0
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    extended_days: int | None = None
    forward_due: date | None = None
    review_requested_at: datetime | None = None
    review_answered_at: datetime | None = None
    recheck_requested_at: datetime | None = None
    recheck_answered_at: datetime | None = None


def check(case: Case, now: datetime, action: str, **fields: str) -> workflow.Change:
    return workflow.check(case, Request(action=action, **fields), units=UNITS, accept_days=15,
                          handle_days=60, tz=SHANGHAI, now=now)


def test_every_status_has_a_staff_name_a_citizen_stage_and_a_place_in_the_workflow() -> None:
    statuses = set(workflow.STATUS)
    assert set(workflow.CITIZEN_STAGES) == statuses
    assert set(workflow.TRANSITIONS) == statuses
    assert {t for ts in workflow.TRANSITIONS.values() for t in ts} <= statuses
    assert set(workflow.OPEN_STATUSES) | set(workflow.CLOSED_STATUSES) == statuses
    assert not set(workflow.OPEN_STATUSES) & set(workflow.CLOSED_STATUSES)
    assert set(workflow.NEEDS_REASON) <= statuses
    for a in workflow.ACTIONS.values():
        assert set(a.sources) <= statuses and (a.target is None or a.target in statuses)


def test_a_closed_case_can_only_be_reopened_and_a_new_one_not_resolved_at_once() -> None:
    assert workflow.can_move("new", "accepted")
    assert not workflow.can_move("new", "resolved")
    assert workflow.can_move("resolved", "in_progress")
    assert workflow.can_move("resolved", "review")
    assert not workflow.can_move("resolved", "rejected")
    assert not workflow.can_move("unknown", "new")
    assert workflow.status_name("unknown") == "unknown"
    assert workflow.action_to("new", "accepted") == "accept"
    assert workflow.action_to("new", "resolved") is None


def test_clocks_are_calendar_days_in_the_configured_zone() -> None:
    # 23:30 UTC on 1 March is 07:30 on 2 March in Shanghai: the day that counts is the 2nd.
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    c = workflow.clocks(Case(received_at=late), 15, 60, SHANGHAI, late)
    assert c.accept_due == date(2026, 3, 17) and c.handle_due is None
    # the whole last day counts: overdue only from the next day, local time
    last = datetime(2026, 3, 17, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    assert not workflow.clocks(Case(received_at=late), 15, 60, SHANGHAI, last).overdue
    assert workflow.clocks(Case(received_at=late), 15, 60, SHANGHAI,
                           last + timedelta(minutes=1)).accept_overdue


def test_handling_runs_from_acceptance_and_one_extension_adds_to_it() -> None:
    accepted = T0 + timedelta(days=3)
    case = Case(status="accepted", accepted_at=accepted)
    c = workflow.clocks(case, 15, 60, SHANGHAI, accepted)
    assert c.handle_due == date(2026, 3, 5) + timedelta(days=60)
    change = check(case, accepted, "extend", reason="需要调取法院卷宗")
    assert change.values["extended_days"] == 30
    assert change.facts["handle_due"] == date(2026, 3, 5) + timedelta(days=90)
    case.extended_days = 30
    assert workflow.clocks(case, 15, 60, SHANGHAI, accepted).handle_due == date(2026, 6, 3)
    with pytest.raises(WorkflowError, match="只能延期一次"):
        check(case, accepted, "extend", reason="还要再等")
    assert [a.name for a in workflow.available("accepted", extended=True)].count("extend") == 0


def test_bad_requests_get_a_message_that_says_what_to_fix() -> None:
    new = Case()
    with pytest.raises(WorkflowError, match="未知的操作"):
        check(new, T0, "approve")
    with pytest.raises(WorkflowError, match="不能“办结并答复”"):
        check(new, T0, "resolve", reply="已处理")
    with pytest.raises(WorkflowError, match="需要填写理由"):
        check(new, T0, "reject", reason="  ")
    with pytest.raises(WorkflowError, match="不在配置的单位名单"):
        check(new, T0, "forward", unit="纪委", due="2026-03-20")
    with pytest.raises(WorkflowError, match="已经过去"):
        check(new, T0, "forward", unit="法院", due="2026-03-01")
    with pytest.raises(WorkflowError, match="年-月-日"):
        check(new, T0, "forward", unit="法院", due="20.3.2026")
    with pytest.raises(WorkflowError, match="不能晚于本件的办结期限"):
        check(new, T0, "forward", unit="法院", due="2026-12-31")
    accepted = Case(status="in_progress", accepted_at=T0)
    for days in ("31", "0", "-3", "x", "\u00b2"):
        with pytest.raises(WorkflowError, match="不能超过 30 日"):
            check(accepted, T0, "extend", reason="复杂", days=days)
    forwarded = check(new, T0, "forward", unit="法院", due="2026-03-20")
    assert forwarded.values["status"] == "forwarded" and forwarded.values["accepted_at"] == T0
    assert forwarded.values["forward_due"] == date(2026, 3, 20)


def test_review_and_recheck_are_asked_for_within_their_windows() -> None:
    answered = T0 + timedelta(days=10)
    case = Case(status="resolved", accepted_at=T0, resolved_at=answered)
    c = workflow.clocks(case, 15, 60, SHANGHAI, answered)
    assert c.review_request_by == date(2026, 3, 12) + timedelta(days=30)
    assert check(case, answered + timedelta(days=30), "request_review",
                 reason="答复没有回应我的问题").values["status"] == "review"
    with pytest.raises(WorkflowError, match="期限.*已过"):
        check(case, answered + timedelta(days=31), "request_review", reason="太晚了")
    case.status, case.review_requested_at = "review", answered
    c = workflow.clocks(case, 15, 60, SHANGHAI, answered + timedelta(days=31))
    assert c.review_due == date(2026, 4, 11) and c.review_overdue and not c.handle_overdue
    case.status, case.review_answered_at = "reviewed", answered
    assert check(case, answered, "request_recheck", reason="复查意见不公").values[
        "status"] == "recheck"
    with pytest.raises(WorkflowError, match="不能再申请复核"):
        check(case, answered + timedelta(days=40), "request_recheck", reason="太晚了")
    assert workflow.available("rechecked") == []


def test_overdue_only_while_a_clock_runs() -> None:
    late = T0 + timedelta(days=80)
    new = workflow.clocks(Case(), 15, 60, SHANGHAI, late)
    assert new.accept_overdue and new.due("new") == new.accept_due
    working = workflow.clocks(Case("in_progress", accepted_at=T0 + timedelta(days=1)), 15, 60,
                              SHANGHAI, late)
    assert not working.accept_overdue and working.handle_overdue
    assert working.due("in_progress") == working.handle_due
    for closed in workflow.CLOSED_STATUSES:
        assert not workflow.clocks(Case(closed, accepted_at=T0), 15, 60, SHANGHAI, late).overdue
    assert not workflow.clocks(Case(), 15, 60, SHANGHAI, T0 + timedelta(days=14)).overdue


def test_the_query_cutoff_is_the_deadline_read_backwards() -> None:
    now = T0 + timedelta(days=20)
    assert workflow.accept_by(workflow.cutoff(now, 15), 15) == now
    assert workflow.handle_by(T0, None, 15, 60) == T0 + timedelta(days=75)
