"""Building outgoing mail: acknowledgements, staff replies, digests.

Everything we send is marked as machine mail the way RFC 3834 asks (``Auto-Submitted``), carries
our loop header so that a misconfigured auto-responder cannot start a ping-pong, and has a
Message-ID on our own domain. Values that come from citizens go through
:func:`handlers.text.one_line` before they reach a header: no input can add a header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from handlers.text import one_line
from storage.db import utcnow

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


def _address(name: str, addr: str) -> Address:
    local, _, domain = addr.partition("@")
    return Address(display_name=one_line(name, 80), username=local, domain=domain)


def build(out: Outgoing) -> bytes:
    """The complete message as bytes with CRLF line ends, ready for SMTP or an .eml file."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _address(out.from_name, out.from_addr)
    msg["To"] = [_address(n, a) for n, a in out.to]
    msg["Subject"] = one_line(out.subject, 250)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{out.message_id}>"
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{one_line(out.in_reply_to, 900)}>"
    refs = [one_line(r, 900) for r in out.references if r]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs[-10:])
    msg["Auto-Submitted"] = out.auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = out.from_addr
    msg["Content-Language"] = "zh-CN"
    msg.set_content(out.text, subtype="plain", charset="utf-8", cte="base64")
    if out.html is not None:
        msg.add_alternative(out.html, subtype="html", charset="utf-8", cte="base64")
        if out.inline:
            html_part = msg.get_payload()[-1]
            for img in out.inline:
                html_part.add_related(img.data, maintype=img.maintype, subtype=img.subtype,
                                      cid=f"<{img.cid}>")
    for att in out.attachments:
        msg.add_attachment(att.data, maintype=att.maintype, subtype=att.subtype,
                           filename=att.filename)
    return msg.as_bytes()
