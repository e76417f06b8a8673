"""The Message-ID a mail source stores with each raw row: read from the header block the way the
stdlib's parser reads it, odd header blocks included (the store step recognises a mail that
arrives twice by it, so a different reading would file a copy twice or drop a new letter)."""

from __future__ import annotations

import itertools
from email import policy
from email.parser import BytesHeaderParser

import pytest

from bot.sources.mailstore import _header_block, message_id_of
from handlers.mail.headers import message_ids, raw_header

pytestmark = pytest.mark.unit

BODY = "正文：小区门口的路灯坏了。\n".encode()


def by_parser(raw: bytes) -> str | None:
    """What the stdlib's header parser reads (the reference)."""
    msg = BytesHeaderParser(policy=policy.compat32).parsebytes(_header_block(raw))
    ids = message_ids(raw_header(msg, "Message-ID"))
    return ids[0][:998] if ids else None


@pytest.mark.parametrize(("head", "expected"), [
    (b"From: a@163.com\r\nMessage-ID: <x1@163.com>\r\nSubject: s\r\n", "x1@163.com"),
    (b"message-id:<x2@qq.com>\n", "x2@qq.com"),
    (b"MESSAGE-ID:\r\n\t<x3@163.com>\r\n", "x3@163.com"),  # folded onto the next line
    (b"Message-ID: <first@a>\r\nMessage-ID: <second@a>\r\n", "first@a"),
    (b"Subject: x\r\n folded\r\nMessage-Id: <x4@a>\r\n (comment)\r\nTo: b\r\n", "x4@a"),
    (b"X-Message-ID: <not@this>\r\nSubject: s\r\n", None),
    (b"Subject: s\r\nbroken line\r\nMessage-ID: <after@break>\r\n", None),  # body for both
    (b"From sender@163.com Mon Dec  7 10:00:00 2026\nMessage-ID: <unix@from>\n", "unix@from"),
    (b"Subject: s\nFrom x\nMessage-ID: <after@from>\n", "after@from"),
    (b"Subject: s\rMessage-ID: <bare@cr>\r", "bare@cr"),  # a bare CR ends a line
    (b" leading\r\nMessage-ID: <lead@ws>\r\n", "lead@ws"),
    (b":nameless\r\nMessage-ID: <nameless@x>\r\n", "nameless@x"),
    ("Message-ID: <中文@例子.cn>\r\n".encode(), "中文@例子.cn"),
    ("Message-ID: <\xff\xfe@gbk>\r\n".encode("latin-1"), None),
    (b"Message-ID: bare-token-without-brackets\r\n", "bare-token-without-brackets"),
    (b"Subject: no id at all\r\n", None),
])
def test_message_id_as_the_parser_reads_it(head: bytes, expected: str | None) -> None:
    sep = b"\r\n" if b"\r\n" in head else b"\n"
    raw = head + sep + BODY
    assert message_id_of(raw) == by_parser(raw)
    if expected is not None:
        assert message_id_of(raw) == expected


def test_generated_header_blocks_agree_with_the_parser() -> None:
    """Every arrangement of these lines (ids before and after odd lines, folds, endings)."""
    lines = [b"Message-ID: <m1@163.com>", b"message-id:\t<m2@qq.com>", b" <cont@x>",
             b"\t(folded)", b"Subject: =?utf-8?b?5Lit5paH?=", b"From a b", b":x",
             b"no colon here", b"X-Long: " + b"y" * 90, "Message-ID: <汉字@a>".encode()]
    checked = 0
    for n in (1, 2, 3):
        for combo in itertools.permutations(lines, n):
            for eol in (b"\r\n", b"\n"):
                raw = eol.join(combo) + eol + eol + BODY
                assert message_id_of(raw) == by_parser(raw), raw
                checked += 1
    assert checked > 1000
