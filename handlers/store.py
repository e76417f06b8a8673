"""Pipeline step 4: file the input as a new submission, or as a follow-up of an old one.

Order of decisions:
1. the same mail seen before (Message-ID of a processed copy) → nothing new (Discard);
2. a reply that references one of our signed Message-IDs → follow-up of that submission;
3. a tracking number in the subject from the original sender → follow-up; from anyone else the
   message is new but linked to the old one (a stranger cannot add to someone's case);
4. otherwise a new submission with a fresh tracking number.
Attachments are written to disk under their SHA-256 (content-addressed: a retry writes the same
file, never a second one) and described in the database.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from handlers import tracking
from handlers.pipeline import Context, Discard, Intake
from storage import events, submissions
from storage import intake as raw_intake


async def _new_tracking_no(ctx: Context) -> str:
    while True:
        tn = tracking.new_tracking_no(ctx.tracking_prefix)
        if not await submissions.tracking_no_exists(ctx.session, tn):
            return tn


def _write_blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = root / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return digest


async def _referenced_submission(intake: Intake, ctx: Context) -> int | None:
    """The submission a reply belongs to, found through our signed Message-IDs."""
    parsed = intake.parsed
    if parsed is None:
        return None
    refs = [parsed.in_reply_to, *parsed.references]
    for ref in filter(None, refs):
        tn = tracking.verify_message_id(ctx.secret, ref, ctx.tracking_prefix)
        if tn:
            sub = await submissions.by_tracking_no(ctx.session, tn)
            if sub is not None:
                return sub.id
    return None


async def _subject_reference(intake: Intake, ctx: Context) -> tuple[int | None, int | None]:
    """(follow-up of, related to) from a tracking number in the subject."""
    tn = tracking.find_tracking_no(intake.subject, ctx.tracking_prefix)
    if not tn:
        return None, None
    sub = await submissions.by_tracking_no(ctx.session, tn)
    if sub is None:
        return None, None
    same_sender = bool(intake.from_addr) and intake.from_addr == (sub.from_addr or "").lower()
    return (sub.id, None) if same_sender else (None, sub.id)


async def _store_followup(intake: Intake, ctx: Context, submission_id: int) -> None:
    fu = await submissions.add_followup(
        ctx.session,
        submission_id=submission_id,
        channel=intake.channel,
        from_addr=intake.from_addr,
        subject=intake.subject,
        text=intake.new_text or intake.text,
        raw_intake_id=intake.raw_id,
        received_at=intake.received_at,
    )
    await _store_attachments(intake, ctx, submission_id, fu.id)
    await events.record(ctx.session, submission_id, intake.actor, "followup",
                        {"channel": intake.channel, "followup_id": fu.id})
    intake.submission_id = submission_id
    intake.followup_of = submission_id


async def _store_attachments(
    intake: Intake, ctx: Context, submission_id: int, followup_id: int | None = None
) -> None:
    if intake.parsed is None:
        await _store_form_attachments(intake, ctx, submission_id, followup_id)
        return
    for att in intake.parsed.attachments:
        digest = _write_blob(ctx.attachments_dir, att.data)
        await submissions.add_attachment(
            ctx.session,
            submission_id=submission_id,
            followup_id=followup_id,
            filename=att.filename,
            content_type=att.content_type,
            size=len(att.data),
            sha256=digest,
            inline=att.inline,
        )


async def _store_form_attachments(
    intake: Intake, ctx: Context, submission_id: int, followup_id: int | None
) -> None:
    """Web uploads: written to the store at POST time, listed in the raw payload."""
    row = await raw_intake.get(ctx.session, intake.raw_id)
    listed = ((row.payload or {}).get("attachments") or []) if row is not None else []
    for att in listed:
        await submissions.add_attachment(
            ctx.session,
            submission_id=submission_id,
            followup_id=followup_id,
            filename=str(att["filename"]),
            content_type=str(att["content_type"]),
            size=int(att["size"]),
            sha256=str(att["sha256"]),
            inline=False,
        )


def _classification_fields(intake: Intake, ctx: Context) -> dict[str, object]:
    c = intake.classification
    if c is None:
        return {"category": "unclassified", "needs_review": not intake.auto}
    return {
        "category": c.category,
        "measure": c.measure,
        "kind": c.kind,
        "confidence": c.confidence,
        "top": {"top": [[cat, score] for cat, score in c.top]},
        "explanation": c.explanation,
        "model_version": c.model_version,
        "taxonomy_version": c.taxonomy_version,
        "needs_review": c.confidence < ctx.review_threshold,
    }


async def process(intake: Intake, ctx: Context) -> None:
    if intake.message_id:
        earlier = await raw_intake.message_id_done(ctx.session, intake.message_id, intake.raw_id)
        if earlier is not None:
            raise Discard("duplicate message-id", submission_id=earlier)
    if not intake.auto:
        parent = await _referenced_submission(intake, ctx)
        related = None
        if parent is None:
            parent, related = await _subject_reference(intake, ctx)
        if parent is not None:
            await _store_followup(intake, ctx, parent)
            return
        intake.related_id = related
    tn = intake.tracking_no or await _new_tracking_no(ctx)
    intake.tracking_no = tn
    intake.query_code = tracking.query_code_for(ctx.secret, tn)
    code_hash = tracking.hash_query_code(ctx.secret, tn, intake.query_code)
    sub = await submissions.add(
        ctx.session,
        tracking_no=tn,
        query_code_hash=code_hash,
        channel=intake.channel,
        from_name=intake.from_name,
        from_addr=intake.from_addr,
        phone=intake.phone,
        subject=intake.subject,
        text=intake.text,
        new_text=intake.new_text if intake.new_text != intake.text else None,
        message_id=intake.message_id,
        auto=intake.auto,
        flags=intake.flags or None,
        related_id=intake.related_id,
        received_at=intake.received_at,
        status="new",
        **_classification_fields(intake, ctx),
    )
    await _store_attachments(intake, ctx, sub.id)
    detail: dict[str, object] = {"channel": intake.channel}
    if intake.auto:
        detail["auto"] = intake.auto_reason
    if intake.classification is not None:
        detail["category"] = intake.classification.category
    await events.record(ctx.session, sub.id, intake.actor, "received", detail)
    intake.submission_id = sub.id
    intake.is_new = True
