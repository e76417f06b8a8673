"""CPython's own email test messages (Lib/test/test_email/data/msg_*.txt): old, odd and
malformed mail that the standard library's authors collected. Each is read without an exception
and with the subject and sender the standard library itself reads, so that our repairs and
charset rules never make a plain message worse. Skipped where the interpreter was installed
without its test suite (Debian's python3 splits it into libpython3-testsuite)."""

from __future__ import annotations

import email
from email import policy
from email.utils import getaddresses
from pathlib import Path

import pytest

from handlers.parse import parse_message

try:
    import test.test_email as _suite

    DATA = Path(_suite.__file__).parent / "data"
except ImportError:  # pragma: no cover - depends on how Python was installed
    DATA = None

MESSAGES = sorted(DATA.glob("msg_*.txt")) if DATA is not None else []


def _folded(text: str | None) -> str:
    return " ".join((text or "").split())


@pytest.mark.skipif(not MESSAGES, reason="CPython's email test messages are not installed")
@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_cpython_message_reads_as_the_standard_library_reads_it(path: Path) -> None:
    raw = path.read_bytes()
    ours = parse_message(raw)
    theirs = email.message_from_bytes(raw, policy=policy.default)
    assert _folded(ours.subject) == _folded(str(theirs["subject"] or ""))
    senders = [addr for _name, addr in getaddresses([str(v) for v in theirs.get_all("from", [])])
               if "@" in addr]
    if senders:
        assert ours.from_addr == senders[0].lower() or ours.from_addr == senders[0]
