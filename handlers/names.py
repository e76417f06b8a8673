"""The Chinese names staff and the leadership read for the codes stored with each letter.

One table per code, read by the console (``bot/web/console/present.py``) and by the weekly
digest (``handlers/digest``) alike, so that a letter's channel and status read the same in the
list, in an export, in the digest mail and in its XLSX. It lives in ``handlers`` because the
digest may not import ``bot``.
"""

from __future__ import annotations

# How a letter reached us (``Submission.channel``).
CHANNEL = {"email": "电子邮件", "web": "网上留言", "phone": "电话", "post": "信件"}
# Where a case stands (``Submission.status``; the workflow is bot/web/console/actions.py).
STATUS = {
    "new": "待受理", "accepted": "已受理", "in_progress": "办理中", "resolved": "已办结",
    "rejected": "不予受理", "forwarded": "转办",
}


def channel_name(code: str) -> str:
    return CHANNEL.get(code, code)


def status_name(code: str) -> str:
    return STATUS.get(code, code)
