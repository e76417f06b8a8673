"""Damaged mail for the parser: the sample corpus and the mutations that break it.

Shared by the property test (``tests/handlers/test_parse_fuzz.py``) and its long version
(``bench/parse_fuzz.py``): byte flips, truncation, duplicated headers and inserted MIME junk,
applied to the sample letters under ``tests/data/``.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "emails"  # copy of shared/data/emails
REALWORLD = Path(__file__).parents[1] / "tests" / "data" / "realworld"  # issue #16's damaged shapes
SAMPLES = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml")) + sorted(REALWORLD.glob("*.eml"))]
PARSE_SECONDS = 3.0  # per message; the slowest corpus message parses in ~10 ms


def _flip(raw: bytes, pos: int, value: int) -> bytes:
    if not raw:
        return raw
    pos %= len(raw)
    return raw[:pos] + bytes([value]) + raw[pos + 1:]


def _truncate(raw: bytes, pos: int, _value: int) -> bytes:
    return raw[: pos % (len(raw) + 1)]


def _duplicate_header(raw: bytes, pos: int, _value: int) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    line = lines[pos % len(lines)]
    return b"\r\n".join([line, *lines, line]) + sep + body


def _insert(raw: bytes, pos: int, value: int) -> bytes:
    pos %= len(raw) + 1
    junk = [b"\x00", b"\r\n", b"=?", b"?=", b"--", b"\xff\xfe", b"\r\n\r\n", b"=\r\n", b"<",
            b"boundary=\"", b"\xe4\xb8", b";", b"\r\n begin 644 x\r\n"]
    return raw[:pos] + junk[value % len(junk)] + raw[pos:]


MUTATIONS = [_flip, _truncate, _duplicate_header, _insert]
