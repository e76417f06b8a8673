"""A staff member's reply to the citizen, composed and written to the outbox.

The console's reply action (``bot/web/console/actions.py``) checks the form and holds the
transaction; this module writes the mail: rendered from ``templates/email/reply.{txt,html}``,
threaded under the acknowledgement the citizen got (as every notice is: handlers/notices.py),
marked as written by a person (RFC 3834 §5: ``Auto-Submitted: no``), with a Message-ID signed
for the tracking number so that the citizen's answer to it files as a follow-up. The outbox
worker delivers it; a retry reuses the same bytes.
"""

from __future__ import annotations

from handlers.notices import case_mail, mail_values
from handlers.step import Context
from storage import outbox
from storage.models import Submission
from storage.status import REPLY_PURPOSE as PURPOSE  # the status page lists these rows


def render(ctx: Context, sub: Submission, body: str) -> tuple[str, str, str]:
    """(subject, text, html) of a staff reply."""
    values = {**mail_values(ctx, sub), "body": body}
    subject = f"【答复】关于您的来信（编号 {sub.tracking_no}）"
    text = ctx.templates.get_template("email/reply.txt").render(values)
    html = ctx.templates.get_template("email/reply.html").render(values)
    return subject, text, html


async def build(ctx: Context, sub: Submission, body: str) -> tuple[str, bytes]:
    """(Message-ID, message) of a staff reply to ``sub``'s writer, who must have an address."""
    subject, text, html = render(ctx, sub, body)
    return await case_mail(ctx, sub, purpose=PURPOSE, subject=subject, text=text, html=html)


async def enqueue(ctx: Context, sub: Submission, body: str) -> str:
    """Write the reply to the outbox in ``ctx.session``'s transaction; its Message-ID."""
    assert sub.from_addr
    message_id, data = await build(ctx, sub, body)
    await outbox.enqueue(ctx.session, purpose=PURPOSE, recipient=sub.from_addr,
                         sender=ctx.from_addr, message_id=message_id, message=data,
                         submission_id=sub.id)
    return message_id
