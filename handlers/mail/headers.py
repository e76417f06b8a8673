"""Header decoding for the parse step: raw 8-bit text, RFC 2047 encoded-words, addresses, dates, ids.

``handlers.parse`` and ``handlers.loop_guard`` read headers through these functions instead of the
``policy.default`` header objects, because those objects turn raw 8-bit bytes into surrogates and
unknown or mislabelled encoded-word charsets into U+FFFD. Here the raw header is recovered as bytes,
decoded with ``handlers.mail.charset`` (UTF-8, then GB18030, RFC 6532 style), and encoded-words are
split by the stdlib ``email.header.decode_header`` and decoded with the same charset fallbacks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from handlers.mail.charset import decode_bytes

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_B_WORD = re.compile(r"=\?([^?\s]*)\?[bB]\?([^?\s]*)\?=")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MSGID = re.compile(r"<([^<>\s]{1,500})>")
# Beijing time: what Chinese mailers that omit the zone mean (the mailbox is in Nantong).
_CST = timezone(timedelta(hours=8))
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u2060\u200e\u200f\u202a\u202b\u202c"
                                    "\u202d\u202e\u2066\u2067\u2068\u2069\x00"), None)


def fold(text: str) -> str:
    """Fold whitespace runs to one space and strip."""
    return " ".join(text.split())


def fold_breaks(value: str) -> str:
    """A raw header value unfolded: the line breaks before continuation lines removed."""
    return _FOLD.sub("", value)


def raw_header(msg: Message, name: str) -> str | None:
    """The first ``name`` header exactly as received (unfolded), or None when absent."""
    wanted = name.lower()
    try:
        for key, value in msg.raw_items():
            if key.lower() == wanted:
                return fold_breaks(str(value))
    except Exception:  # a damaged header list must not stop the parse
        return None
    return None


def raw_headers(msg: Message, name: str) -> list[str]:
    """Every ``name`` header as received (unfolded), in order."""
    wanted = name.lower()
    try:
        return [_FOLD.sub("", str(v)) for k, v in msg.raw_items() if k.lower() == wanted]
    except Exception:
        return []


def to_bytes(value: str) -> bytes:
    """Recover the original bytes of a string produced by the bytes parser (surrogateescape)."""
    return value.encode("utf-8", "surrogateescape")


def unicode_raw(value: str, defects: list[str] | None = None) -> str:
    """Decode raw 8-bit bytes in a header (RFC 6532 UTF-8, or GBK from older clients)."""
    data = to_bytes(value)
    if data.isascii():
        return value
    text, defect = decode_bytes(data, None, short=True)
    _note(defects, defect)
    return text


def _note(defects: list[str] | None, defect: str | None) -> None:
    if defect and defects is not None and defect not in defects:
        defects.append(defect)


# An encoded-word whose text holds raw 8-bit bytes: broken mailers write =?utf-8?Q?<raw 关于>?=.
# The stdlib re-encodes such text with raw-unicode-escape and returns "\u5173" literally.
_RAW_WORD = re.compile(rb"=\?([^?\s]{1,80})\?([QqBb])\?([^?\s]*?[\x80-\xff][^?\s]*?)\?=")


def escape_raw_words(data: bytes) -> bytes:
    """Rewrite encoded-words that carry raw 8-bit bytes as proper Q-words of the same bytes, so
    they are decoded by the word's declared charset (and its fallbacks) like any other."""
    if b"=?" not in data or data.isascii():
        return data

    def fix(m: re.Match[bytes]) -> bytes:
        charset, kind, text = m.groups()
        literal = kind in b"Bb"  # raw text in a B-word is not base64 at all: take it as written
        out = b"".join(b"=%02X" % b if b >= 0x80 or (literal and b in b"=_?") else bytes([b])
                       for b in text)
        return b"=?" + charset + b"?Q?" + out + b"?="

    return _RAW_WORD.sub(fix, data)


def _escaped(value: str) -> str:
    """``escape_raw_words`` on a header string as the bytes parser gives it (surrogateescape)."""
    if value.isascii() or "=?" not in value:
        return value
    return escape_raw_words(to_bytes(value)).decode("utf-8", "surrogateescape")


def _fix_b_words(text: str) -> str:
    """Make broken base64 encoded-words decodable: drop junk, cut a dangling last sextet."""

    def fix(m: re.Match[str]) -> str:
        body = re.sub(r"[^A-Za-z0-9+/]", "", m.group(2))
        if len(body) % 4 == 1:
            body = body[:-1]
        return f"=?{m.group(1)}?B?{body}?="

    return _B_WORD.sub(fix, text)


def decode_words(text: str, defects: list[str] | None = None) -> str:
    """Decode RFC 2047 encoded-words in already-Unicode header text."""
    if "=?" not in text:
        return text
    try:
        chunks = decode_header(text)
    except (HeaderParseError, ValueError, AssertionError):
        try:
            chunks = decode_header(_fix_b_words(text))
        except (HeaderParseError, ValueError, AssertionError):
            return text
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            # decode_header re-encodes plain runs with raw-unicode-escape; undo exactly that.
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            # RFC 2231 allows "charset*language" inside an encoded-word.
            decoded, defect = decode_bytes(chunk, charset.split("*")[0], short=True)
            _note(defects, defect)
            out.append(decoded)
    return "".join(out)


def clean_header(text: str) -> str:
    """Drop invisible and control characters a header must not carry into our output."""
    text = text.translate(_INVISIBLE)
    text = _CONTROL.sub(" ", text)
    # Lone surrogates (undecodable bytes) cannot be written as UTF-8 JSON; make the loss visible.
    return _SURROGATE.sub("\ufffd", text)


def header_text(msg: Message, name: str, defects: list[str] | None = None) -> str | None:
    """A header's decoded, cleaned, whitespace-folded value, or None when absent."""
    raw = raw_header(msg, name)
    if raw is None:
        return None
    return fold(clean_header(decode_words(unicode_raw(_escaped(raw), defects), defects)))


# Encoded-words are hidden from the address parser behind private-use placeholders: a decoded
# display name may hold commas and angle brackets ("Bürling, Andreas"), and even the encoded
# text is split at a Q-encoded comma by getaddresses.
_ANY_WORD = re.compile(r"=\?[^?\s]{1,80}\?[QqBb]\?[^?\s]*\?=")
# Only a word holding an address special needs hiding (base64 text never does).
_RISKY_WORD = re.compile(r"=\?[^?\s]{1,80}\?[QqBb]\?[^?\s]*?[,;:<>@\"()\[\]\\][^?\s]*\?=")
_ADDR_SPEC = re.compile(r"[^\s<>\"'(),;:\[\]@]+@[^\s<>\"'(),;:\[\]@]+")
_HIDDEN = re.compile("\ue000(\\d+)\ue001")


def mailboxes(raw: str, defects: list[str] | None = None) -> list[tuple[str, str]]:
    """(decoded display name, lower-cased address or "") of each mailbox in a From-like value."""
    pairs, words = _address_pairs(raw, defects)

    def restore(text: str) -> str:
        if not words or "\ue000" not in text:
            return text
        return _HIDDEN.sub(lambda m: words[int(m.group(1))], text)

    return [_tidy(fold(clean_header(decode_words(restore(name), defects))),
                  fold(clean_header(restore(addr)))) for name, addr in pairs]


def _tidy(name: str, addr: str) -> tuple[str, str]:
    """(name, lower-cased addr-spec): a name written without angle brackets ('"Smith, John"
    john@example.com') lands in the address; the addr-spec is cut out and the rest is the name."""
    if "@" in addr and not _ADDR_SPEC.fullmatch(addr):
        found = _ADDR_SPEC.search(addr)
        if found:
            rest = (addr[:found.start()] + " " + addr[found.end():]).strip()
            name, addr = name or decode_words(fold(rest)), found.group(0)
    return name.strip("\"' "), addr.lower()


def _address_pairs(raw: str, defects: list[str] | None) -> tuple[list[tuple[str, str]], list[str]]:
    """getaddresses over ``raw`` with its encoded-words hidden; (pairs, the hidden words)."""
    words: list[str] = []

    def hide(m: re.Match[str]) -> str:
        words.append(m.group(0))
        return f"\ue000{len(words) - 1}\ue001"

    text = unicode_raw(_escaped(raw), defects)
    if "=?" in text and _RISKY_WORD.search(text):
        text = _ANY_WORD.sub(hide, text)
    try:
        return getaddresses([text]), words
    except Exception:  # getaddresses has had crash bugs on hostile input
        return [], words


def parse_address(raw: str | None, defects: list[str] | None = None) -> tuple[str | None, str | None]:
    """(lower-cased addr-spec, decoded display name) of the first address in a From-like header."""
    if raw is None:
        return None, None
    return _first_mailbox(raw, mailboxes(raw, defects))


def _first_mailbox(raw: str, found: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    name, addr = found[0] if found else ("", "")
    if "@" not in addr:
        # "From: 王建国" or garbage: no usable address; whatever was written is the name.
        name = name or fold(clean_header(decode_words(unicode_raw(_escaped(raw)))))
        addr = ""
    if name.lower() == addr:
        name = ""
    return addr or None, name or None


def sender(msg: Message, defects: list[str]) -> tuple[str | None, str | None]:
    """(address, name) of the first usable mailbox over every From header.

    RFC 5322 allows several mailboxes in From (with a Sender), and broken mailers write two
    From headers or an empty first address (``"Yangzhou ABC " <>, "LTD" <ly@example.com>``):
    the first mailbox with an address is the one that can be acknowledged.
    """
    values = raw_headers(msg, "From")
    if not values:
        return None, None
    found = mailboxes(values[0], defects)
    if len(values) > 1 or len(found) > 1 or (found and "@" not in found[0][1]):
        found += [box for value in values[1:] for box in mailboxes(value, defects)]
        usable = next(((n, a) for n, a in found if "@" in a), None)
        if usable is not None:
            # No address in the text: defects carry no personal data (a 举报's writer is secret).
            defects.append(f"发件人栏有 {len(found)} 个地址或首个地址不可用，已取第一个可用地址")
            return _first_mailbox(values[0], [usable])
    return _first_mailbox(values[0], found)


def address_list(raw_values: list[str]) -> list[str]:
    """Lower-cased addr-specs of every address in To/Cc-like headers."""
    return [addr.strip().lower() for value in raw_values
            for _, addr in _address_pairs(value, None)[0] if "@" in addr]


def message_ids(raw: str | None) -> list[str]:
    """Message-IDs in a Message-ID/In-Reply-To/References value, without <>."""
    if not raw:
        return []
    text = clean_header(unicode_raw(raw))
    found = _MSGID.findall(text)
    if found:
        return found
    token = text.split()[0].strip("<>") if text.split() else ""
    return [token] if token else []


def parse_date(raw: str | None) -> tuple[datetime | None, str | None]:
    """(aware datetime, defect) from a Date header; zone-less dates are taken as Beijing time."""
    if raw is None:
        return None, None
    text = fold(clean_header(unicode_raw(raw)))
    when: datetime | None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        when = _loose_date(text)
    if when is None:
        return None, f"无法解析的日期：{text[:60]}"
    defect = None
    if when.tzinfo is None:
        zone_given = re.search(r"[-+]0000|\b(GMT|UT|UTC)\b", text)
        when = when.replace(tzinfo=UTC if zone_given else _CST)
        defect = None if zone_given else "日期缺少时区，按北京时间处理"
    if not 1970 <= when.year <= 2100:
        return None, f"日期超出合理范围：{text[:60]}"
    return when, defect


_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日.*?(上午|下午|晚上|中午)?\s*"
                      r"(\d{1,2})[:：](\d{2})")


def _loose_date(text: str) -> datetime | None:
    """Dates hand-written by broken clients: ISO 8601 and '2026年11月25日 上午10:15'."""
    try:
        return datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        pass
    m = _CN_DATE.search(text)
    if not m:
        return None
    year, month, day, half, hour, minute = m.groups()
    h = int(hour) + (12 if half in ("下午", "晚上") and int(hour) < 12 else 0)
    try:
        return datetime(int(year), int(month), int(day), h, int(minute))
    except ValueError:
        return None

