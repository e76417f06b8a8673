"""What the parse step reads out of a message: :class:`ParsedMail` and its attachments.

``handlers.parse`` fills these; ``handlers.loop_guard`` reads them and the pipeline's
:class:`~handlers.step.Intake` carries them. They sit here, apart from the parser, so that
those modules share the types without importing the parse step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import Message


@dataclass
class Attachment:
    filename: str            # decoded and sanitised (see mail.parts.safe_filename)
    content_type: str        # lower-cased
    data: bytes
    inline: bool             # True for cid:-referenced inline parts
    content_id: str | None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class ParsedMail:
    message_id: str | None        # without <>
    from_addr: str | None         # lower-cased addr-spec
    from_name: str | None
    subject: str                  # decoded, whitespace folded, stripped
    date: datetime | None         # aware
    text: str                     # the whole citizen text, plain, clean Unicode
    new_text: str                 # text above the quoted history of a reply (== text if none)
    attachments: list[Attachment]
    in_reply_to: str | None       # without <>
    references: list[str]         # without <>
    to_addrs: list[str]           # To and Cc addr-specs, lower-cased
    headers: Message              # the parsed EmailMessage (loop_guard reads it)
    defects: list[str]            # problems for staff, in Chinese
    oversized: bool               # raw over the size limit: attachments not extracted
