"""MIME leaf parts for the parse step: transfer decoding, parameters and safe attachment names.

``handlers.parse`` walks the MIME tree and calls these for each leaf. Transfer decoding is done
here rather than by ``get_payload(decode=True)`` because the stdlib returns the raw base64 text
when a body is truncated to 4n+1 characters and silently passes unknown encodings; both must be
visible as defects and still yield the bytes that are there. Parameters are read with the compat32
parser so RFC 2231 values and raw 8-bit names reach ``handlers.mail.charset`` undamaged.
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from email.message import Message

from handlers.mail.charset import decode_bytes
from handlers.mail.headers import clean_header, decode_words, escape_raw_words, raw_header, to_bytes
from handlers.mail.text import uudecode

_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_ENCODED = frozenset({"base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue", "uue"})
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")
_PADDED_LINE = re.compile(rb"[A-Za-z0-9+/]=[ \t]*(?:\r?\n|$)|==[ \t]*(?:\r?\n|$)")
# A line with a character base64 never has, or a space between base64 characters.
_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|\Z)")
_B64_TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"
_IMPURE_LINE = re.compile(rb"(?m)^[ \t]*[A-Za-z0-9+/=]*(?:[^A-Za-z0-9+/=\s]|[ \t]+[A-Za-z0-9+/=])")
_B64_LINE = re.compile(rb"(?m)^[A-Za-z0-9+/]{16,}={0,2}[ \t]*\r?$")
_PURE_B64_LINES = re.compile(rb"(?:[ \t]*[A-Za-z0-9+/]*={0,2}[ \t]*(?:\r?\n|$))*")
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"}
                              | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)})
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]')
MAX_NAME = 200


def transfer_encoding(part: Message) -> str:
    raw = raw_header(part, "Content-Transfer-Encoding") or ""
    return clean_header(raw).strip().strip("\"'").lower()


def decode_base64(data: bytes) -> tuple[bytes, bool, bytes]:
    """Decode base64 as far as it goes; (bytes, truncated?, junk after the end).

    Padding inside is allowed when pure base64 lines follow (chunks encoded one by one and
    concatenated); anything else after the first padding is not part of the data (a footer a
    gateway appended, a signature): it is returned apart instead of being decoded to garbage.
    """
    data, junk = _split_junk(data)
    out = []
    compact = _B64_JUNK.sub(b"", data)
    # Unpadded text at the very end means the sender's mailer or a server cut the message.
    truncated = len(compact.rstrip(b"=")) % 4 != 0 and not compact.endswith(b"=")
    for chunk in compact.split(b"="):
        rest = len(chunk) % 4
        if rest == 1:  # a lone sextet is half a byte: nothing to decode
            chunk = chunk[:-1]
        elif rest:
            chunk += b"=" * (4 - rest)
        if chunk:
            out.append(binascii.a2b_base64(chunk))
    return b"".join(out), truncated, junk


def _split_junk(data: bytes) -> tuple[bytes, bytes]:
    """(base64 data, trailing junk): the data ends at a padded line or before a line that is not
    base64 when no base64 line follows it (a stray character inside the data stays tolerated)."""
    padding = data.find(b"=")
    if (padding < 0 or not data[padding:].strip(b"=\r\n\t ")) and not data.translate(None, _B64_TEXT):
        return data, b""  # the common case, decided at C speed: nothing after the padding
    pad = _PADDED_LINE.search(data)
    bad = _IMPURE_LINE.search(data)
    for end, start in ((pad.end(), pad.end()) if pad else (None, None),
                       (bad.start(), bad.start()) if bad else (None, None)):
        if end is None:
            continue
        rest = data[start:]
        if not rest.strip():
            continue
        if start == end and bad is not None and end == bad.start():
            # an impure line: noise inside the data if base64 lines still follow it
            if _B64_LINE.search(rest[rest.find(b"\n") + 1:] if b"\n" in rest else b""):
                continue
        elif _PURE_B64_LINES.fullmatch(rest):
            continue  # chunks encoded one by one and concatenated
        return data[:end], rest.strip()
    return data, b""


def payload_bytes(part: Message) -> tuple[bytes, list[str]]:
    """The decoded bytes of a leaf part and any defects found on the way."""
    cte = transfer_encoding(part)
    try:
        if cte in _ENCODED:
            # The encoded text is ASCII; get_payload() keeps it as the client wrote it.
            text = _encoded_text(part)
            if isinstance(text, bytes):
                return text, []
            return _decode(to_bytes(text) if isinstance(text, str) else b"", cte)
        # Identity: get_payload(decode=True) returns the raw bytes (get_payload() would have
        # decoded them with the declared charset and errors="replace", losing GBK-as-ascii text).
        data = part.get_payload(decode=True)
    except Exception:  # damaged part headers; report it, keep the rest of the message
        return b"", ["无法读取的 MIME 部件"]
    data = data if isinstance(data, bytes) else b""
    if cte in _IDENTITY:
        return data, []
    # RFC 2045 §6.4 says an unknown encoding makes the part opaque; in practice it is a typo
    # ("8bits") over plain bytes, so identity loses nothing and staff are told.
    return data, [f"未知传输编码 {cte[:40]}"]


def _encoded_text(part: Message) -> object:  # str or bytes, unless the part is damaged
    try:
        return part.get_payload()
    except (ValueError, LookupError):
        # Stray 8-bit bytes plus a damaged charset parameter make get_payload() re-decode and
        # fail; the stdlib decoder is the next best reading of the same text.
        return part.get_payload(decode=True)


def _decode(data: bytes, cte: str) -> tuple[bytes, list[str]]:
    if cte == "base64":
        decoded, truncated, junk = decode_base64(data)
        defects = ["截断的 base64（已解码可读部分）"] if truncated else []
        if junk:  # its size, not its text: defects must not leak a letter's content
            defects.append(f"base64 数据结束后有 {len(junk)} 字节多余内容，未解码")
        return decoded, defects
    if cte == "quoted-printable":
        # RFC 2045 §6.7 (3): whitespace a transport added at line ends is deleted, which also
        # makes "= " + line break the soft line break it was (binascii keeps "= " literally).
        return binascii.a2b_qp(_TRAILING_SPACE.sub(b"", data)), []
    lines = data.decode("latin-1").splitlines()
    return uudecode([x for x in lines if not x.startswith("begin ")]), []


def param(part: Message, header: str, name: str) -> str | None:
    """A decoded Content-Type/Content-Disposition parameter (RFC 2231, encoded-words, raw 8-bit)."""
    raw = raw_header(part, header)
    if raw is None:
        return None
    # compat32 keeps RFC 2231 triples; latin-1 text keeps raw 8-bit bytes recoverable (compat32
    # would turn surrogates into an "unknown-8bit" Header and lose them).
    holder = Message()
    try:
        holder[header] = to_bytes(raw).decode("latin-1")
        value = holder.get_param(name, None, header)
    except Exception:  # damaged parameter lists
        return None
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _lang, text = value
        data = str(text).encode("latin-1", "replace")
        return clean_header(decode_bytes(data, charset or None, short=True)[0])
    data = escape_raw_words(str(value).encode("latin-1", "replace"))
    return clean_header(decode_words(decode_bytes(data, None, short=True)[0]))


def raw_filename(part: Message) -> str | None:
    """The attachment name a client gave, decoded but not yet sanitised."""
    for header, name in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        value = param(part, header, name)
        if value and value.strip():
            return value.strip()
    return None


def safe_filename(name: str | None, index: int, content_type: str) -> str:
    """A name safe to store and to offer for download, keeping the client's name where possible."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name).strip(" .")
    stem = name.split(".", 1)[0].strip().upper()
    if stem in _WINDOWS_RESERVED:
        name = f"_{name}"
    if len(name) > MAX_NAME:
        base, dot, ext = name.rpartition(".")
        ext = f".{ext}" if dot and 0 < len(ext) <= 16 else ""
        name = (base if dot else name)[: MAX_NAME - len(ext)] + ext
    if not name or not name.replace("_", ""):
        ext = mimetypes.guess_extension(content_type, strict=False) or ".bin"
        name = f"attachment-{index}{ext}"
    return name
