"""The Chinese names staff and the leadership read for the codes stored with each letter.

One table per code, read by the console (``bot/web/console/present.py``) and by the weekly
digest (``handlers/digest``) alike, so that a letter's channel and status read the same in the
list, in an export, in the digest mail and in its XLSX. It lives in ``handlers`` because the
digest may not import ``bot``. The status names belong to the workflow (``storage.workflow``).
"""

from __future__ import annotations

# How a letter reached us (``Submission.channel``).
CHANNEL = {"email": "电子邮件", "web": "网上留言", "phone": "电话", "post": "信件"}


def channel_name(code: str) -> str:
    return CHANNEL.get(code, code)
