"""Pipeline step 5: write the citizen an acknowledgement, into the outbox.

The acknowledgement tells a worried citizen that a person will read the letter, gives the tracking
number and query code, the time limits, and how to follow up. It is rendered from
``templates/email/ack.{txt,html}`` and written to the outbox in the same transaction as the
submission; the outbox worker delivers it. Machines are never answered (loop_guard), and a cap per
address and day keeps us from flooding anyone, even when asked to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers import tracking
from handlers.mail import compose
from handlers.step import AckDraft, Context, Intake, Step, one_by_one
from handlers.text import excerpt
from storage.clock import utcnow

CATEGORY_SKIP = {"spam"}


def _skip_reason(intake: Intake, ctx: Context) -> str | None:
    """Why this input gets no acknowledgement, as far as it alone can tell."""
    if not intake.is_new:
        return "follow-up"
    return _static_skip_reason(intake, ctx)


def _static_skip_reason(intake: Intake, ctx: Context) -> str | None:
    """The reasons known before the letter is filed (``draft`` asks them ahead)."""
    if not intake.acknowledge:
        return "imported without acknowledgement"
    if intake.auto:
        return f"machine mail ({intake.auto})"
    if not intake.from_addr or "@" not in intake.from_addr:
        return "no address"
    if intake.classification is not None and intake.classification.category in CATEGORY_SKIP:
        return "spam"
    if intake.from_addr.lower() == ctx.from_addr.lower():
        return "our own address"
    return None


async def _to_acknowledge(intakes: list[Intake], ctx: Context) -> list[Intake]:
    """The inputs that get an acknowledgement; the others get ``ack_skipped``. The suppression
    and the daily cap are read for all addresses at once, and the cap counts the batch's own
    acknowledgements as it goes, as filing the letters one by one would."""
    candidates = []
    for intake in intakes:
        intake.ack_skipped = _skip_reason(intake, ctx)
        if intake.ack_skipped is None:
            candidates.append(intake)
    addresses = {str(i.from_addr).lower() for i in candidates}
    from storage import outbox  # imported here: see process_many

    standing = await outbox.standing_many(ctx.session, addresses, utcnow() - timedelta(days=1))
    chosen = []
    for intake in candidates:
        addr = str(intake.from_addr).lower()
        suppressed, sent = standing[addr]
        if suppressed:
            intake.ack_skipped = "address suppressed after a bounce"
        elif sent >= ctx.acks_per_sender_per_day:
            intake.ack_skipped = "daily cap for this address"
        else:
            standing[addr] = (suppressed, sent + 1)
            chosen.append(intake)
    return chosen


def render_ack(intake: Intake, ctx: Context) -> tuple[str, str, str]:
    """(subject, text, html) of the acknowledgement."""
    values: dict[str, Any] = {
        "tracking_no": intake.tracking_no,
        "query_code": intake.query_code,
        "name": intake.from_name,
        "subject": intake.subject,
        "excerpt": excerpt(intake.new_text or intake.text, 160),
        "received_at": intake.received_at,
        "accept_days": ctx.accept_days,
        "handle_days": ctx.handle_days,
        "status_url": f"{ctx.public_url}/status",
        "public_url": ctx.public_url,
        "channel": intake.channel,
        "tz": ZoneInfo(ctx.timezone),
    }
    subject = f"【已收到】您的来信已登记，编号 {intake.tracking_no}"
    text = ctx.templates.get_template("email/ack.txt").render(values)
    html = ctx.templates.get_template("email/ack.html").render(values)
    return subject, text, html


def draft(intake: Intake, ctx: Context) -> None:
    """The prepare half: write the acknowledgement ahead, outside the transaction, for a
    letter that will get one unless the database says otherwise (a follow-up, the daily cap,
    a suppressed address); :func:`process_many` uses it if the tracking number still holds."""
    if intake.tracking_no and _static_skip_reason(intake, ctx) is None:
        intake.query_code = tracking.query_code_for(ctx.secret, intake.tracking_no)
        intake.ahead.ack_draft = AckDraft(intake.tracking_no, *_compose(intake, ctx))


def _outbox_row(intake: Intake, ctx: Context) -> dict[str, object]:
    assert intake.tracking_no and intake.from_addr
    draft = intake.ahead.ack_draft
    if draft is not None and draft.tracking_no == intake.tracking_no:
        message_id, data = draft.message_id, draft.message
    else:
        message_id, data = _compose(intake, ctx)
    intake.ack_message_id = message_id
    return {"purpose": "ack", "recipient": intake.from_addr, "sender": ctx.from_addr,
            "message_id": message_id, "message": data, "submission_id": intake.submission_id}


def _compose(intake: Intake, ctx: Context) -> tuple[str, bytes]:
    """(Message-ID, message) of this letter's acknowledgement."""
    assert intake.tracking_no and intake.from_addr
    message_id = tracking.signed_message_id(ctx.secret, "ack", intake.tracking_no,
                                            ctx.message_id_domain)
    subject, text, html = render_ack(intake, ctx)
    refs = []
    if intake.parsed is not None:
        refs = [*intake.parsed.references, intake.message_id]
    data = compose.build(
        compose.Outgoing(
            from_addr=ctx.from_addr,
            from_name=ctx.from_name,
            to=[(intake.from_name or "", intake.from_addr)],
            subject=subject,
            text=text,
            html=html,
            message_id=message_id,
            in_reply_to=intake.message_id,
            references=[r for r in refs if r],
        )
    )
    return message_id, data


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    # The storage modules are imported where the database is used: ``draft`` runs in the
    # intake's prepare processes, which should not load SQLAlchemy for it (about 22 MB).
    from storage import events, outbox

    chosen = await _to_acknowledge(intakes, ctx)
    await outbox.enqueue_many(ctx.session, [_outbox_row(i, ctx) for i in chosen])
    await events.record_many(ctx.session, [
        (i.submission_id, "system", "ack-queued", {"message_id": i.ack_message_id})
        for i in chosen])


async def acknowledge_later(ctx: Context, *, submission_id: int, tracking_no: str, channel: str,
                            received_at: datetime, from_name: str | None, from_addr: str | None,
                            subject: str, text: str, message_id: str | None) -> str | None:
    """Acknowledge a letter filed earlier without one because it was judged machine mail, once
    staff have said it is a citizen's: the same mail, cap and suppression as at intake. Returns
    why none was queued, or None when it was."""
    intake = Intake(raw_id=0, channel=channel, received_at=received_at,
                    tracking_no=tracking_no, from_name=from_name, from_addr=from_addr,
                    subject=subject, text=text, message_id=message_id,
                    submission_id=submission_id, is_new=True)
    intake.query_code = tracking.query_code_for(ctx.secret, tracking_no)
    await process_many([intake], ctx)
    return intake.ack_skipped


STEP = Step("acknowledge", process_many, prepare=one_by_one(draft))
