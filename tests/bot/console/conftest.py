"""Fixtures for the console tests: staff accounts and an HTTP client (made in support.py)."""

from __future__ import annotations

from tests.bot.console.support import client, staff_fixture

__all__ = ["admin", "client", "reviewer", "supervisor"]  # the fixtures pytest finds here

reviewer = staff_fixture("reviewer")
supervisor = staff_fixture("supervisor")
admin = staff_fixture("admin")
