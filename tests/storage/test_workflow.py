"""The workflow module: one table of statuses that every reader's words and clocks agree on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import workflow

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_every_status_has_a_staff_name_a_citizen_stage_and_a_place_in_the_workflow() -> None:
    statuses = set(workflow.STATUS)
    assert set(workflow.CITIZEN_STAGES) == statuses
    assert set(workflow.TRANSITIONS) == statuses
    assert {t for ts in workflow.TRANSITIONS.values() for t in ts} <= statuses
    assert set(workflow.OPEN_STATUSES) | set(workflow.CLOSED_STATUSES) == statuses
    assert not set(workflow.OPEN_STATUSES) & set(workflow.CLOSED_STATUSES)
    assert set(workflow.NEEDS_REASON) <= statuses


def test_a_closed_case_can_only_be_reopened_and_a_new_one_not_resolved_at_once() -> None:
    assert workflow.can_move("new", "accepted")
    assert not workflow.can_move("new", "resolved")
    assert workflow.can_move("resolved", "in_progress")
    assert not workflow.can_move("resolved", "rejected")
    assert not workflow.can_move("unknown", "new")
    assert workflow.status_name("unknown") == "unknown"


def test_handling_is_due_from_acceptance_and_projected_from_the_acceptance_deadline() -> None:
    accepted = T0 + timedelta(days=3)
    assert workflow.accept_by(T0, 15) == T0 + timedelta(days=15)
    assert workflow.handle_by(T0, accepted, 15, 60) == accepted + timedelta(days=60)
    assert workflow.handle_by(T0, None, 15, 60) == T0 + timedelta(days=75)


def test_overdue_only_while_the_case_is_open() -> None:
    late = T0 + timedelta(days=80)
    new = workflow.deadlines("new", T0, None, 15, 60, late)
    assert new.accept_overdue and new.handle_overdue and new.due("new") == new.accept_by
    working = workflow.deadlines("in_progress", T0, T0 + timedelta(days=1), 15, 60, late)
    assert not working.accept_overdue and working.handle_overdue
    assert working.due("in_progress") == working.handle_by
    for closed in workflow.CLOSED_STATUSES:
        assert not workflow.deadlines(closed, T0, T0, 15, 60, late).overdue
    early = workflow.deadlines("new", T0, None, 15, 60, T0 + timedelta(days=14))
    assert not early.overdue


def test_the_query_cutoff_is_the_deadline_read_backwards() -> None:
    now = T0 + timedelta(days=20)
    received = workflow.cutoff(now, 15) - timedelta(seconds=1)
    assert workflow.deadlines("new", received, None, 15, 60, now).accept_overdue
    received = workflow.cutoff(now, 15) + timedelta(seconds=1)
    assert not workflow.deadlines("new", received, None, 15, 60, now).accept_overdue
