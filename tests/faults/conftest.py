"""Fixtures for the fault tests: a private Dovecot (some tests restart it) and a seeded RNG."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from testing.dovecot import Dovecot, ImapAccount
from tests.fixtures_servers import require

USER, PASSWORD = "faults", "faults-password"


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of this test's own, so restarting it disturbs no other test."""
    require(Dovecot.available(), "Dovecot (dovecot-imapd)")
    with Dovecot().start({USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def own_account(own_dovecot: Dovecot) -> ImapAccount:
    return ImapAccount(own_dovecot.host, own_dovecot.port, USER, PASSWORD)


@pytest.fixture
def rng() -> random.Random:
    """Random kill moments; FAULT_SEED replays a failing run (the seed is printed)."""
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"FAULT_SEED={seed}")
    return random.Random(seed)
