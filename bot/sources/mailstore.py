"""Store one raw mail as a raw intake row: what the IMAP poller, the Maildir folder and
``feedback-bot ingest`` have in common.

A mail source writes the exact bytes it received, with a ``source_key`` that makes a second
attempt a no-op (``imap:<folder>:<uidvalidity>:<uid>``, ``maildir:<name>``, ``import:<sha256>``)
and the Message-ID, so that the store step can recognise the same mail arriving again by another
way. Only the header block is read here, with the stdlib header parser: the full parse (and its
size limit) is the pipeline's job, and a source must stay fast and must not fail on odd mail.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.mail.headers import fold_breaks, message_ids, parse_date, raw_header
from storage import raw_intake
from storage.db import utcnow

CHANNEL = "email"
# Enough for any sane header block; a message whose headers go on longer is still stored whole.
HEADER_LIMIT = 256 * 1024
MESSAGE_ID_MAX = 998  # the column's width (RFC 5322 line limit)


def _header_block(raw: bytes) -> bytes:
    head = raw[:HEADER_LIMIT]
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = head.find(sep)
        if end >= 0:
            return head[: end + len(sep)]
    return head


# A header field line as the stdlib's feed parser recognises one (its ``headerRE``, less the
# cases _first_field leaves to the parser): a name of printable ASCII but ":", then ":".
_FIELD = re.compile(rb"[\041-\071\073-\176]+:")
_UNSURE = object()


def _first_field(block: bytes, wanted: bytes) -> str | None | object:
    """The raw value of the first ``wanted`` field (lower case, with its colon) of a header
    block, as ``BytesHeaderParser(policy=compat32)`` and ``raw_header`` would give it; None
    when the header has no such field; ``_UNSURE`` for a "From " or nameless line, which the
    parser reads its own way. Lines end where the parser ends them (CRLF, LF or a bare CR:
    ``bytes.splitlines``). Written here because the poller reads every letter's Message-ID
    before it stores it, and the full header parse was most of the poller's CPU per letter
    (67 µs); the stdlib has no lighter way to one field."""
    value: list[bytes] | None = None
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):  # a continuation line (ignored before the first field)
            if value is not None:
                value.append(line)
            continue
        if value is not None:
            break
        if line.startswith(b"From ") or line.startswith(b":"):
            return _UNSURE
        if not _FIELD.match(line):
            return None  # the blank line, or a line that ends the header for the parser too
        if line[:len(wanted)].lower() == wanted:
            value = [line[len(wanted):].lstrip(b" \t")]
    if value is None:
        return None
    return fold_breaks(b"".join(value).rstrip(b"\r\n").decode("ascii", "surrogateescape"))


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID (without <>) read from the header block only; None when absent."""
    block = _header_block(raw)
    value = _first_field(block, b"message-id:")
    if value is _UNSURE:
        try:
            msg = BytesHeaderParser(policy=policy.compat32).parsebytes(block)
        except Exception:  # a header block the parser chokes on still gets stored, without an id
            return None
        value = raw_header(msg, "Message-ID")
    assert value is None or isinstance(value, str)
    ids = message_ids(value)
    return ids[0][:MESSAGE_ID_MAX] if ids else None


def date_of(raw: bytes) -> datetime | None:
    """The Date header as an aware datetime, or None; used for imported past mail."""
    try:
        msg = BytesHeaderParser(policy=policy.compat32).parsebytes(_header_block(raw))
    except Exception:
        return None
    when, _defect = parse_date(raw_header(msg, "Date"))
    if when is None or when > utcnow():
        return None
    return when


def mail_row(
    *,
    source_key: str,
    raw: bytes,
    received_at: datetime | None = None,
    message_id: str | None = None,
    acknowledge: bool = True,
) -> dict[str, Any]:
    """The raw row of one mail, for ``raw_intake.add`` or ``add_many``.

    ``acknowledge=False`` files the mail without an acknowledgement (importing old archives).
    """
    return dict(
        channel=CHANNEL,
        source_key=source_key,
        raw=raw,
        payload=None if acknowledge else {"no_ack": True},
        message_id=message_id if message_id is not None else message_id_of(raw),
        received_at=received_at,
    )


async def store_mail(
    session: AsyncSession,
    *,
    source_key: str,
    raw: bytes,
    received_at: datetime | None = None,
    message_id: str | None = None,
    acknowledge: bool = True,
) -> int | None:
    """Add the raw row (the caller commits); None when this source key was stored before."""
    return await raw_intake.add(session, **mail_row(
        source_key=source_key, raw=raw, received_at=received_at, message_id=message_id,
        acknowledge=acknowledge))
