"""Pipeline step 4: file the input as a new submission, or as a follow-up of an old one.

Order of decisions:
1. the same mail seen before (Message-ID of a processed copy) → nothing new (discarded);
2. a reply that references one of our signed Message-IDs → follow-up of that submission;
3. a tracking number in the subject from the original sender → follow-up; from anyone else the
   message is new but linked to the old one (a stranger cannot add to someone's case); an
   addition on the status page (``Intake.addition_to``) → follow-up of its case;
4. otherwise a new submission with a fresh tracking number, linked to the open cases it repeats
   (并单, handlers/repeats.py): the same writer's (by address or phone key) and near-duplicates
   from other citizens (the service's :class:`~handlers.repeats.RepeatIndex`, ``ctx.repeats``).
   A follow-up of a case merged into another is kept with its writer's case and alerts the
   carrying case.
Attachments are written to the attachment store (``storage.blobs``: content-addressed, a retry
writes the same file, never a second one) and described in the database.

The step works on a batch: the lookups of every letter in it (earlier copies, referenced
tracking numbers, taken tracking numbers) are one statement each, and the new submissions one
multi-row INSERT. That is only the same as filing the letters one by one if none depends on
another in the batch; :func:`independent` cuts the batch where one would.

The step's prepare half draws each new letter's tracking number ahead (checked here against
the database) and cuts the letter into the shingles the repeat index compares (the larger part
of signing it), so that the transaction only hashes them and queries the index. It runs in the intake's prepare processes, which import this module and should
not load SQLAlchemy (about 22 MB): the storage modules are imported where they are used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from handlers import loop_guard, tracking, urgent
from handlers.classify.restrict import Restriction, cue, decide
from handlers.step import Context, Discarded, Intake, Step, one_by_one
from storage.clock import utcnow

if TYPE_CHECKING:
    from handlers.repeats import SenderKeys

Known = dict[str, tuple[int, str | None]]  # tracking number → (submission id, sender address)
# A letter about an event hundreds write about is linked to its most similar open cases only:
# staff read a handful of links, and the digest's themes join the rest through them.
MAX_CONTENT_LINKS = 10


def _signed_references(intake: Intake, ctx: Context) -> list[str]:
    """Tracking numbers behind our signed Message-IDs that this mail replies to, in order."""
    parsed = intake.parsed
    if parsed is None:
        return []
    refs = [parsed.in_reply_to, *parsed.references]
    found = (tracking.verify_message_id(ctx.secret, r, ctx.tracking_prefix) for r in refs if r)
    return [tn for tn in found if tn]


def _subject_tracking_no(intake: Intake, ctx: Context) -> str | None:
    return tracking.find_tracking_no(intake.subject, ctx.tracking_prefix)


def _mentioned(intake: Intake, ctx: Context) -> list[str]:
    """Every tracking number whose submission could make this input a follow-up."""
    if intake.addition_to is not None:
        return [intake.addition_to]
    if intake.auto:
        return []
    subject_tn = _subject_tracking_no(intake, ctx)
    return _signed_references(intake, ctx) + ([subject_tn] if subject_tn else [])


def _parent(intake: Intake, ctx: Context, known: Known) -> tuple[int | None, int | None]:
    """(follow-up of, related to): a signed reference wins; a tracking number in the subject
    makes a follow-up only from the original sender, from anyone else a link (a stranger cannot
    add to someone's case). Machine mail is never a follow-up. An addition on the status page
    belongs to its case (its writer gave the query code); with the case gone it is kept for
    staff (an error: held, then quarantined), never filed as a new letter."""
    if intake.addition_to is not None:
        if intake.addition_to not in known:
            raise LookupError(f"no submission {intake.addition_to} to add to")
        return known[intake.addition_to][0], None
    if intake.auto:
        return None, None
    tn: str | None
    for tn in _signed_references(intake, ctx):
        if tn in known:
            return known[tn][0], None
    tn = _subject_tracking_no(intake, ctx)
    if not tn or tn not in known:
        return None, None
    sub_id, sub_addr = known[tn]
    same_sender = bool(intake.from_addr) and intake.from_addr == (sub_addr or "").lower()
    return (sub_id, None) if same_sender else (None, sub_id)


def independent(intakes: list[Intake], ctx: Context) -> Iterator[list[Intake]]:
    """Split a batch, in order, into runs that :func:`process_many` files exactly as it would
    file them one by one: a run never holds two copies of one Message-ID, nor a letter and an
    input that mentions its tracking number. A bounce (it may suppress an address or mark an
    outbox row) and an input not parsed and judged ahead (its keys are unknown) go alone."""
    run: list[Intake] = []
    keys: set[str] = set()
    for intake in intakes:
        alone = loop_guard.STEP.name not in intake.ahead.done or intake.auto == "bounce"
        mine = {f"m:{intake.message_id}"} if intake.message_id else set()
        mine |= {f"t:{tn}" for tn in [intake.tracking_no, *_mentioned(intake, ctx)] if tn}
        if run and (alone or mine & keys):
            yield run
            run, keys = [], set()
        run.append(intake)
        keys |= mine
        if alone:
            yield run
            run, keys = [], set()
    if run:
        yield run


async def _store_followup(intake: Intake, ctx: Context, submission_id: int) -> None:
    """Rare next to new letters, so its statements go one by one."""
    from storage import events, submissions

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
    if intake.addition_to is not None:  # the citizen's own words change the case
        await submissions.touch(ctx.session, submission_id)
    await _alert_carrier(ctx, submission_id, fu.id)
    intake.submission_id = submission_id
    intake.followup_of = submission_id


async def _alert_carrier(ctx: Context, submission_id: int, followup_id: int) -> None:
    """A follow-up of a case merged into another stays with its writer's case (their status
    page shows it, the carrying case's citizen never does) and is put before the staff
    handling the carrying case: a line in its history, and it moves up the list."""
    from storage import events, review_list, submissions

    sub = await review_list.get(ctx.session, submission_id)
    if sub is None or sub.merged_into_id is None:
        return
    await events.record(ctx.session, sub.merged_into_id, "system", "merged-followup",
                        {"tracking_no": sub.tracking_no, "followup_id": followup_id})
    await submissions.touch(ctx.session, sub.merged_into_id)


async def _store_attachments(
    intake: Intake, ctx: Context, submission_id: int, followup_id: int | None = None
) -> None:
    """Mail attachments are written to the store here; web uploads were written at POST time
    and are listed in the raw payload."""
    from storage import submissions
    from storage.blobs import BlobStore

    if intake.parsed is not None:
        blobs = BlobStore(ctx.attachments_dir)
        listed = [{"filename": a.filename, "content_type": a.content_type, "size": len(a.data),
                   "sha256": blobs.put(a.data), "inline": a.inline}
                  for a in intake.parsed.attachments]
    else:
        listed = [{"filename": str(a["filename"]), "content_type": str(a["content_type"]),
                   "size": int(a["size"]), "sha256": str(a["sha256"]), "inline": False}
                  for a in intake.form_attachments]
    for att in listed:
        await submissions.add_attachment(ctx.session, submission_id=submission_id,
                                         followup_id=followup_id, **att)


def restriction(intake: Intake, ctx: Context) -> Restriction:
    """Whether the letter is restricted (a 举报): the writer's choice, else the classifier's
    label through ``restrict``'s one decision. Unclassified input (machine mail, no model) is
    still read for the cues: a bounce may quote a 举报's subject."""
    writer = bool(intake.flags.get("report"))
    c = intake.classification
    if c is not None:
        return c.restriction(ctx.restrict_threshold, writer=writer)
    return decide(writer=writer, report_cue=cue(f"{intake.subject}\n{intake.text}"))


def _classification_fields(intake: Intake, ctx: Context) -> dict[str, object]:
    c = intake.classification
    r = restriction(intake, ctx)
    if c is None:  # every key all the same: one multi-row INSERT needs the same columns
        return {"category": "unclassified", "measure": None, "kind": None, "confidence": None,
                "top": None, "explanation": None, "model_version": None,
                "taxonomy_version": None, "needs_review": not intake.auto,
                "restricted": r.restricted, "restricted_by": r.by}
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
        "restricted": r.restricted,
        "restricted_by": r.by,
    }


async def _assign_tracking_nos(intakes: list[Intake], ctx: Context) -> None:
    """The numbers drawn ahead by prepare() (or now) kept where free, the others drawn again
    (``raw_intake.fresh_tracking_nos``, the same draw as the web form's)."""
    from storage import raw_intake

    for intake in intakes:
        intake.draw_tracking_no(ctx.tracking_prefix)
    drawn = [i for i in intakes if i.ahead.tracking_drawn and i.tracking_no]
    draw = functools.partial(tracking.new_tracking_nos, prefix=ctx.tracking_prefix)
    fresh = await raw_intake.fresh_tracking_nos_in(
        ctx.session, [i.tracking_no for i in drawn if i.tracking_no], draw)
    for intake, tn in zip(drawn, fresh, strict=True):
        intake.tracking_no = tn


def _submission_row(intake: Intake, ctx: Context) -> dict[str, object]:
    from storage import workflow

    assert intake.tracking_no
    intake.query_code = tracking.query_code_for(ctx.secret, intake.tracking_no)
    return {
        "tracking_no": intake.tracking_no,
        "query_code_hash": tracking.hash_query_code(ctx.secret, intake.tracking_no,
                                                    intake.query_code),
        "channel": intake.channel,
        "from_name": intake.from_name,
        "from_addr": intake.from_addr,
        "phone": intake.phone,
        "postal_address": intake.postal_address,
        "subject": intake.subject,
        "text": intake.text,
        "new_text": intake.new_text if intake.new_text != intake.text else None,
        "message_id": intake.message_id,
        "auto": intake.auto,
        "flags": intake.flags or None,
        "related_id": intake.related_id,
        "received_at": intake.received_at,
        "status": workflow.NEW,
        **_classification_fields(intake, ctx),
        **_urgent_fields(intake),
    }


def _urgent_fields(intake: Intake) -> dict[str, object]:
    """The urgent mark from the classification (``urgent.verdict``); every key always, for the
    one multi-row INSERT."""
    flagged, reasons = urgent.verdict(intake.classification)
    return {"urgent": flagged, "urgent_reasons": reasons or None,
            "urgent_at": utcnow() if flagged else None,
            "urgent_by": "classifier" if flagged else None}


def _received_detail(intake: Intake, row: dict[str, object]) -> dict[str, object]:
    """The "received" event of a letter whose submission ``row`` was just written."""
    detail: dict[str, object] = {"channel": intake.channel}
    if intake.auto:
        detail["auto"] = intake.auto_reason
    if intake.classification is not None:
        detail["category"] = intake.classification.category
    if row["restricted_by"]:
        detail["restricted"] = row["restricted_by"]  # who restricted it (never the words)
    if row["urgent"]:
        detail["urgent"] = row["urgent_reasons"] or []  # cue categories, never the words
    return detail


async def _store_new(intakes: list[Intake], ctx: Context) -> None:
    from handlers.repeats import sender_keys
    from storage import events, submissions

    await _assign_tracking_nos(intakes, ctx)
    # The writer's keys of a citizen's letter go in with its row (an UPDATE of each new row
    # after the INSERT rewrote it once more); machine mail and spam are not keyed.
    keys: list[SenderKeys | None] = [
        sender_keys(i.from_addr, i.phone, ctx.phone_area) if _comparable(i) else None
        for i in intakes]
    rows = [{**_submission_row(i, ctx), "sender_addr_key": k.address if k else None,
             "sender_phone_key": k.phone if k else None} for i, k in zip(intakes, keys, strict=True)]
    ids = await submissions.add_many(ctx.session, rows)
    for intake, sub_id, row in zip(intakes, ids, rows, strict=True):
        intake.submission_id = sub_id
        intake.is_new = True
        intake.restricted, intake.urgent = bool(row["restricted"]), bool(row["urgent"])
        if intake.form_attachments or (intake.parsed and intake.parsed.attachments):
            await _store_attachments(intake, ctx, sub_id)
    await events.record_many(ctx.session, [
        (i.submission_id, i.actor, "received", _received_detail(i, row))
        for i, row in zip(intakes, rows, strict=True)])
    await _link_repeats(intakes, ctx, {i.submission_id: k for i, k in zip(intakes, keys,
                                                                          strict=True)
                                       if k is not None and i.submission_id is not None})


def _comparable(intake: Intake) -> bool:
    """A citizen's letter (not machine mail, not spam): what repeats are looked for."""
    c = intake.classification
    return not intake.auto and not (c is not None and c.category == "spam")


async def _link_repeats(intakes: list[Intake], ctx: Context,
                        keys: dict[int, SenderKeys]) -> None:
    """Link each new citizen's letter (``keys``: id → its writer's keys, stored with it) to
    the earlier open cases it repeats, and put it in the repeat index. A batch is linked as if
    filed one by one: a letter is linked to cases with a smaller id only (letters of the same
    batch included)."""
    from storage import repeats
    from storage.clock import utcnow

    since = utcnow() - timedelta(days=ctx.repeat_window_days)
    index = ctx.repeats
    citizens = [i for i in intakes if i.submission_id is not None and _comparable(i)]
    if index is not None:
        index.prune(since)
        for intake in intakes:  # an id used before by a rolled-back batch holds nothing now
            if intake.submission_id is not None and not _comparable(intake):
                index.remove(intake.submission_id)
    same_writer = await repeats.open_by_keys(
        ctx.session, {k.address for k in keys.values() if k.address},
        {k.phone for k in keys.values() if k.phone}, since)
    # (case ids, exact Jaccards) of the earlier cases each letter repeats, most similar first
    similar: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for intake in citizens:
        assert intake.submission_id is not None
        if index is None:
            continue
        signature = intake.signature
        if signature is None or len(signature.hashvalues) != index.num_perm:
            signature = index.sign(intake.subject, intake.text)
        ids, _, jaccards = index.ranked(signature, exclude=intake.submission_id,
                                        estimates=False)
        earlier = ids < intake.submission_id
        similar[intake.submission_id] = ids[earlier], jaccards[earlier]
        index.insert(intake.submission_id, signature, intake.received_at)
    candidates = {c for ids, _ in similar.values() for c in ids.tolist()}
    alive = await repeats.still_open(ctx.session, candidates, since)
    links: list[tuple[int, int, str, float | None]] = []
    for sid, key in keys.items():
        assert sid is not None
        ids, jaccards = similar.get(sid, (np.empty(0, dtype=np.int64), np.empty(0)))
        found: Iterator[tuple[int, float]] = zip(ids.tolist(), jaccards.tolist(), strict=True)
        writers = [case.id for case in same_writer
                   if case.id < sid and ((key.address and key.address == case.address_key)
                                         or (key.phone and key.phone == case.phone_key))]
        if writers:  # a same-writer link carries the content score when there is one
            scores = {c: j for c, j in found if c in alive}
            links += [(sid, case_id, repeats.SENDER, scores.pop(case_id, None))
                      for case_id in writers]
            found = iter(scores.items())  # the rest, still most similar first
        # The most similar open cases not linked as the same writer (popped above); the first
        # few only.
        links += islice(((sid, c, repeats.CONTENT, j) for c, j in found if c in alive),
                        MAX_CONTENT_LINKS)
    await repeats.add_links(ctx.session, links)


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    from storage import raw_intake, submissions

    earlier = await raw_intake.message_ids_done(
        ctx.session, [i.message_id for i in intakes if i.message_id])
    fresh = []
    for intake in intakes:
        if intake.message_id in earlier:
            intake.discard = Discarded("duplicate message-id", earlier[intake.message_id])
        else:
            fresh.append(intake)
    known = await submissions.by_tracking_nos(
        ctx.session, [tn for i in fresh for tn in _mentioned(i, ctx)])
    new = []
    for intake in fresh:
        parent, intake.related_id = _parent(intake, ctx, known)
        if parent is not None:
            await _store_followup(intake, ctx, parent)
        else:
            new.append(intake)
    await _store_new(new, ctx)


def _draw_ahead(intake: Intake, ctx: Context) -> None:
    """The prepare half: a citizen's letter without a number gets one drawn now, so that its
    acknowledgement can be drafted ahead too, and is signed for the repeat index (its shingles
    and MinHash: the transaction only queries the index). Machine mail gets its number in the
    transaction and is not compared."""
    if not intake.auto:
        intake.draw_tracking_no(ctx.tracking_prefix)
        if ctx.shingler is not None and _comparable(intake) and intake.addition_to is None:
            intake.signature = ctx.shingler.sign(intake.subject, intake.text)


STEP = Step("store", process_many, prepare=one_by_one(_draw_ahead))
