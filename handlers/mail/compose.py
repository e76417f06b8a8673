"""Building outgoing mail: acknowledgements, staff replies, digests.

Everything we send is marked as machine mail the way RFC 3834 asks (``Auto-Submitted``), carries
our loop header so that a misconfigured auto-responder cannot start a ping-pong, and has a
Message-ID on our own domain. Values that come from citizens go through
:func:`handlers.text.one_line` before they reach a header: no input can add a header.

No address or display name makes :func:`build` raise. A display name is decoded first (a citizen
may type an RFC 2047 encoded-word into a name field, or a mail program may write one whose text
holds CR/LF), folded to one line, and written encoded whenever it is not plain ASCII text. An
address at an internationalised domain with an ASCII local part is written with the domain in
IDNA (``xn--``) form, which every relay takes; one with a non-ASCII local part can only travel
by SMTPUTF8 (RFC 6531), so its header is written as raw UTF-8 (RFC 6532) and
:func:`envelope_address` tells the outbox worker that the relay must offer SMTPUTF8.

Messages are built with the stdlib's ``email.mime`` classes (the compat32 API), not
``EmailMessage``: every header set on an ``EmailMessage`` is parsed and refolded by the header
registry, which made an acknowledgement cost 1.6 ms to build, three times the parse of the
letter it answers. What we write is simple and known (UTF-8, base64 bodies, RFC 2047 words, RFC
2231 file names), so the older API writes the same message for a third of the cost.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass, field
from email import base64mime, encoders, policy
from email.charset import Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr
from typing import Any

import idna

from handlers.mail.headers import decode_words
from handlers.text import one_line
from storage.clock import utcnow

LOOP_HEADER = "X-Feedback-Bot-Loop"


@dataclass
class Inline:
    """An image shown inside the HTML part by Content-ID (e.g. the digest chart)."""

    cid: str
    data: bytes
    maintype: str = "image"
    subtype: str = "png"


@dataclass
class Attached:
    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


@dataclass
class Outgoing:
    from_addr: str
    from_name: str
    to: list[tuple[str, str]]  # (name, address)
    subject: str
    text: str
    html: str | None
    message_id: str  # without <>
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    auto_submitted: str = "auto-replied"
    inline: list[Inline] = field(default_factory=list)
    attachments: list[Attached] = field(default_factory=list)


class _Utf8(str):
    """A header value written as raw UTF-8 (RFC 6532), for a message that travels by SMTPUTF8:
    an address whose local part is not ASCII has no ASCII form, and compat32 would otherwise
    turn the whole value, address included, into an encoded-word no one can reply to."""


class _Wire(policy.Compat32):
    """compat32 with CRLF line ends (as SMTP and .eml files want), writing a short ASCII header
    as it is. compat32 sends every header through ``email.header.Header`` to fold it, even
    ``Auto-Submitted: auto-replied``; that was a quarter of an acknowledgement's cost. Anything
    longer or not ASCII (encoded words are made before) still goes the library's way."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, _Utf8):
            return f"{name}: {value}{self.linesep}".encode()
        if (isinstance(value, str) and value.isascii() and len(name) + len(value) < 76
                and "\r" not in value and "\n" not in value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        if type(value) is str:  # a plain string folds the same every time: see _fold_str
            return _fold_str(self, name, value)
        return super().fold_binary(name, value)


@functools.lru_cache(maxsize=256)
def _fold_str(wire: _Wire, name: str, value: str) -> bytes:
    """compat32's folding of a plain string header, remembered: our From header (an encoded
    display name, the same on every message) cost as much as the rest of the headers together.
    The key is the whole value, so a message only ever gets the bytes of its own value."""
    return policy.Compat32.fold_binary(wire, name, value)


WIRE = _Wire(linesep="\r\n")


def _boundary() -> str:
    """A random MIME boundary. Given one, the generator skips its own search of every body
    for a clash (a regular expression compiled per message); ours cannot clash, because every
    part we write is base64 and "_" is not in the base64 alphabet."""
    return f"=_{secrets.token_hex(12)}"


# Characters that cannot be part of one stored addr-spec but would split a header into more
# addresses (or a display name) if a hostile value carried them.
_NOT_IN_ADDRESS = re.compile(r"[\s<>,;\"()\\]")
_UTF8 = Charset("utf-8")


def _valid(text: str) -> str:
    """``text`` without lone surrogates (undecodable bytes a parser kept), which no encoder
    takes: each becomes "?"."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def envelope_address(addr: str) -> tuple[str, bool]:
    """(the address as it goes into the header and the SMTP envelope, whether it needs
    SMTPUTF8). ASCII stays as it is; a non-ASCII domain with an ASCII local part becomes IDNA
    (UTS #46 mapping, as mail programs do); anything else stays Unicode and needs SMTPUTF8."""
    text = _NOT_IN_ADDRESS.sub("", _valid(one_line(addr, 320)))
    if text.isascii():
        return text, False
    local, at, domain = text.rpartition("@")
    if at and local.isascii():
        try:
            return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}", False
        except (idna.IDNAError, UnicodeError, ValueError):
            pass
    return text, True


def display_name(name: str | None) -> str:
    """A display name as it may be shown: encoded-words decoded (once), every control
    character, CR/LF included, folded to a space; at most 80 characters."""
    text = _valid(name or "")
    if "=?" in text:
        text = decode_words(text)
    return _valid(one_line(text, 80))


def _address(name: str, addr: str) -> tuple[str, bool]:
    """(one mailbox for a From/To header, whether it needs SMTPUTF8)."""
    shown = display_name(name)
    mailbox, utf8 = envelope_address(addr)
    if not shown:
        return mailbox, utf8
    if shown.isascii() and "=?" not in shown:
        # formataddr quotes and escapes the name as RFC 5322 wants, but refuses a non-ASCII
        # address: it is given a stand-in, and the real address is put after the name.
        return f"{formataddr((shown, 'x@x'))[:-6]} <{mailbox}>", utf8
    # Encoded always when not plain ASCII: a name that still reads like an encoded-word after
    # decoding is written inside one, so a reader's program shows it as the literal text.
    return f"{_UTF8.header_encode(shown)} <{mailbox}>", utf8


def _words(value: str) -> str | Header:
    """A header value, its non-ASCII words as RFC 2047 encoded words and its ASCII words
    (a tracking number, "Re:") left readable, as the modern email API writes them."""
    if value.isascii():
        return value
    header = Header()
    words = value.split(" ")
    start = 0
    for end in range(1, len(words) + 1):
        if end == len(words) or words[end].isascii() != words[start].isascii():
            run = " ".join(words[start:end])
            header.append(run, "us-ascii" if run.isascii() else "utf-8")
            start = end
    return header


def _part(data: bytes, maintype: str, subtype: str) -> Message:
    part = MIMENonMultipart(maintype, subtype)
    part.set_payload(data)
    encoders.encode_base64(part)
    return part


def _text(text: str, subtype: str) -> Message:
    """A UTF-8 text part in base64. ``MIMEText`` does the same through ``set_charset``, whose
    parameter handling cost more than the encoding itself."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(base64mime.body_encode(text.encode("utf-8", "replace")))
    part["Content-Transfer-Encoding"] = "base64"
    return part


def _html(out: Outgoing) -> Message:
    html = _text(out.html or "", "html")
    if out.inline:
        images = []
        for img in out.inline:
            image = _part(img.data, img.maintype, img.subtype)
            image["Content-ID"] = f"<{img.cid}>"
            image["Content-Disposition"] = "inline"
            images.append(image)
        html = MIMEMultipart("related", boundary=_boundary(), _subparts=[html, *images])
    return html


def _body(out: Outgoing) -> Message:
    body = _text(out.text, "plain")
    if out.html is not None:
        body = MIMEMultipart("alternative", boundary=_boundary(), _subparts=[body, _html(out)])
    if out.attachments:
        files = []
        for att in out.attachments:
            part = _part(att.data, att.maintype, att.subtype)
            part.add_header("Content-Disposition", "attachment",
                            filename=att.filename if att.filename.isascii()
                            else ("utf-8", "", att.filename))
            files.append(part)
        body = MIMEMultipart("mixed", boundary=_boundary(), _subparts=[body, *files])
    return body


def build(out: Outgoing) -> bytes:
    """The complete message as bytes with CRLF line ends, ready for SMTP or an .eml file."""
    return flatten(message(out))


def flatten(msg: Message) -> bytes:
    """What ``msg.as_bytes(policy=WIRE)`` writes, for the trees :func:`message` builds, at a
    third of the cost. The stdlib's generator clones its policy and itself for every part,
    dispatches on the content type and writes each body line through two calls, which was
    half of an acknowledgement's cost; it also handles what we never build (surrogate-escaped
    payloads, preambles, epilogues, missing boundaries, message/* parts). Here the headers go
    through the same ``WIRE.fold_binary`` in the same order and the bodies, all base64 text
    with "\n" line ends, get CRLF ends: the same bytes (a test compares the two on many
    messages)."""
    out: list[bytes] = []
    _flatten(msg, out)
    return b"".join(out)


def _flatten(msg: Message, out: list[bytes]) -> None:
    out += [WIRE.fold_binary(name, value) for name, value in msg.raw_items()]
    out.append(b"\r\n")
    payload = msg.get_payload()
    if isinstance(payload, list):  # multipart: every one of ours carries its boundary
        boundary = msg.get_boundary()
        out.append(f"--{boundary}\r\n".encode("ascii"))
        for n, part in enumerate(payload):
            if n:
                out.append(f"\r\n--{boundary}\r\n".encode("ascii"))
            _flatten(part, out)
        out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    elif isinstance(payload, str):
        out.append(payload.replace("\n", "\r\n").encode("ascii"))


def message(out: Outgoing) -> Message:
    """The message tree of ``out`` (:func:`build` writes it)."""
    msg = _body(out)
    sender, sender_utf8 = _address(out.from_name, out.from_addr)
    to = [_address(n, a) for n, a in out.to]
    msg["From"] = _Utf8(sender) if sender_utf8 else sender
    to_value = ", ".join(a for a, _ in to)
    msg["To"] = _Utf8(to_value) if any(u for _, u in to) else to_value
    msg["Subject"] = _words(_valid(one_line(out.subject, 250)))  # type: ignore[assignment]  # compat32 takes a Header
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{out.message_id}>"
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{_valid(one_line(out.in_reply_to, 900))}>"
    refs = [_valid(one_line(r, 900)) for r in out.references if r]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs[-10:])
    msg["Auto-Submitted"] = out.auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"
    loop_value, loop_utf8 = envelope_address(out.from_addr)  # the same form as in From
    msg[LOOP_HEADER] = _Utf8(loop_value) if loop_utf8 else loop_value
    msg["Content-Language"] = "zh-CN"
    return msg
