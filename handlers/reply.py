"""A staff member's reply to the citizen, composed and written to the outbox.

The console's reply action (``bot/web/console/actions.py``) checks the form and holds the
transaction; this module writes the mail: rendered from ``templates/email/reply.{txt,html}``,
threaded under the citizen's letter, marked as written by a person (RFC 3834 §5:
``Auto-Submitted: no``), with a Message-ID signed for the tracking number so that the citizen's
answer to it files as a follow-up. The outbox worker delivers it; a retry reuses the same bytes.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers import tracking
from handlers.mail import compose
from handlers.step import Context
from storage import outbox
from storage.models import Submission
from storage.status import REPLY_PURPOSE as PURPOSE  # the status page lists these rows


def render(ctx: Context, sub: Submission, body: str) -> tuple[str, str, str]:
    """(subject, text, html) of a staff reply."""
    values = {
        "name": sub.from_name, "tracking_no": sub.tracking_no, "subject": sub.subject,
        "body": body, "received_at": sub.received_at, "tz": ZoneInfo(ctx.timezone),
        "query_code": tracking.query_code_for(ctx.secret, sub.tracking_no),
        "status_url": f"{ctx.public_url}/status", "public_url": ctx.public_url,
    }
    subject = f"【答复】关于您的来信（编号 {sub.tracking_no}）"
    text = ctx.templates.get_template("email/reply.txt").render(values)
    html = ctx.templates.get_template("email/reply.html").render(values)
    return subject, text, html


def build(ctx: Context, sub: Submission, body: str) -> tuple[str, bytes]:
    """(Message-ID, message) of a staff reply to ``sub``'s writer, who must have an address."""
    assert sub.from_addr
    message_id = tracking.signed_message_id(ctx.secret, PURPOSE, sub.tracking_no,
                                            ctx.message_id_domain)
    subject, text, html = render(ctx, sub, body)
    data = compose.build(compose.Outgoing(
        from_addr=ctx.from_addr, from_name=ctx.from_name,
        to=[(sub.from_name or "", sub.from_addr)], subject=subject, text=text, html=html,
        message_id=message_id, in_reply_to=sub.message_id,
        references=[sub.message_id] if sub.message_id else [],
        auto_submitted="no",  # written by a person (RFC 3834 §5)
    ))
    return message_id, data


async def enqueue(ctx: Context, sub: Submission, body: str) -> str:
    """Write the reply to the outbox in ``ctx.session``'s transaction; its Message-ID."""
    assert sub.from_addr
    message_id, data = build(ctx, sub, body)
    await outbox.enqueue(ctx.session, purpose=PURPOSE, recipient=sub.from_addr,
                         sender=ctx.from_addr, message_id=message_id, message=data,
                         submission_id=sub.id)
    return message_id
