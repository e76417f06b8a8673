"""Pipeline step 2: recognise machine mail, so that we never answer a machine.

Auto-replies, bounces and list mail are stored like everything else but marked, kept out of the
review queue and never acknowledged (RFC 3834). A bounce of one of our own messages marks that
outbox row bounced, and a permanent bounce stops mail to that address for a while.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.pipeline import Context, Intake
from storage import outbox
from storage.db import utcnow

SUPPRESS_FOR = timedelta(days=30)


async def process(intake: Intake, ctx: Context) -> None:
    if intake.parsed is None:
        return
    from handlers.loop_guard import bounced_message_ids, machine_kind

    intake.auto, intake.auto_reason = machine_kind(intake.parsed, ctx.loop_policy)
    if intake.auto != "bounce":
        return
    ids, permanent = bounced_message_ids(intake.parsed)
    recipients = await outbox.mark_bounced(ctx.session, ids, intake.auto_reason or "bounce")
    if recipients:
        intake.flags["bounced"] = ids
    if permanent:
        for addr in recipients:
            await outbox.suppress(ctx.session, addr, "permanent bounce", utcnow() + SUPPRESS_FOR)
