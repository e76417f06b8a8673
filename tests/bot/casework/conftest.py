"""Fixtures for the casework tests: staff accounts with API tokens (helpers in support.py) and
the console tests' HTTP client."""

from __future__ import annotations

from tests.bot.casework.support import staff_with_token
from tests.bot.console.support import client, staff_fixture

__all__ = ["client", "reviewer", "supervisor"]  # the fixtures pytest finds here

supervisor = staff_fixture("supervisor", staff_with_token)
reviewer = staff_fixture("reviewer", staff_with_token)
