"""The outbox: complete messages waiting for SMTP, claimed by one sender at a time.

Handlers enqueue; one worker delivers (Mailman's to-outgoing habit). A row is claimed by setting
``claimed_until`` in a short transaction (on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so several
instances never take the same row), delivered outside any transaction, then marked. A process that
dies between the SMTP server's "250" and our commit leaves a claim that expires; the row is then
sent again with the same bytes and Message-ID, so a receiver can tell it is the same message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement

from storage.db import utcnow
from storage.models import Outbox, OutboxPause, Submission, Suppression
from storage.upsert import Bulk

PAUSE = "smtp"  # the one sender we have; the pause row's name


async def enqueue(
    session: AsyncSession,
    *,
    purpose: str,
    recipient: str,
    sender: str,
    message_id: str,
    message: bytes,
    submission_id: int | None = None,
    priority: int = 0,
) -> Outbox:
    now = utcnow()
    row = Outbox(
        priority=priority,
        purpose=purpose,
        recipient=recipient,
        sender=sender,
        message_id=message_id,
        message=message,
        submission_id=submission_id,
        state="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


def _due(now: datetime) -> ColumnElement[bool]:
    pending = and_(Outbox.state == "pending", Outbox.next_attempt_at <= now)
    stale = and_(Outbox.state == "sending", Outbox.claimed_until < now)
    return or_(pending, stale)


async def claim_due(session: AsyncSession, *, limit: int, lease: timedelta,
                    min_priority: int | None = None) -> list[Outbox]:
    """Claim up to ``limit`` due rows for this worker, highest priority first (an urgent
    letter's alert before acknowledgements and digests), then oldest due; with
    ``min_priority`` only rows of at least that priority. The caller commits."""
    now = utcnow()
    cond = _due(now)
    if min_priority is not None:
        cond = and_(cond, Outbox.priority >= min_priority)
    stmt = (select(Outbox).where(cond)
            .order_by(Outbox.priority.desc(), Outbox.next_attempt_at).limit(limit))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(await session.scalars(stmt))
    for row in rows:
        row.state = "sending"
        row.claimed_until = now + lease
    return rows


async def next_due_at(session: AsyncSession, min_priority: int | None = None
                      ) -> datetime | None:
    cond = Outbox.state == "pending"
    if min_priority is not None:
        cond = and_(cond, Outbox.priority >= min_priority)
    return await session.scalar(select(func.min(Outbox.next_attempt_at)).where(cond))


# The marks below are Core statements on the table: through the ORM each one also ran its
# "synchronize session" step, which cost more than the UPDATE (the outbox marks every message
# in its own transaction, so this is per message).
_T = Outbox.__table__


async def mark_sent(session: AsyncSession, row_id: int) -> None:
    await mark_sent_many(session, [row_id])


async def mark_sent_many(session: AsyncSession, row_ids: list[int]) -> None:
    await session.execute(
        update(_T)
        .where(_T.c.id.in_(row_ids))
        .values(state="sent", sent_at=utcnow(), claimed_until=None, last_error=None)
    )


async def mark_retry(session: AsyncSession, row_id: int, error: str, delay: timedelta) -> None:
    await session.execute(
        update(_T)
        .where(_T.c.id == row_id)
        .values(
            state="pending",
            attempts=_T.c.attempts + 1,
            next_attempt_at=utcnow() + delay,
            claimed_until=None,
            last_error=error[:2000],
        )
    )


async def mark_failed(session: AsyncSession, row_id: int, error: str, state: str = "failed") -> None:
    await session.execute(
        update(_T)
        .where(_T.c.id == row_id)
        .values(state=state, attempts=_T.c.attempts + 1, claimed_until=None,
                last_error=error[:2000])
    )


async def mark_deferred(session: AsyncSession, row_ids: list[int], until: datetime,
                        error: str | None) -> None:
    """Back to pending until ``until`` without counting an attempt: the provider asked the
    whole outbox to wait, which says nothing about these messages."""
    if row_ids:
        values: dict[str, object] = {"state": "pending", "next_attempt_at": until,
                                     "claimed_until": None}
        if error is not None:
            values["last_error"] = error[:2000]
        await session.execute(update(_T).where(_T.c.id.in_(row_ids)).values(values))


async def resend(session: AsyncSession, row_id: int, retry_until: datetime) -> Outbox | None:
    """A failed (or dismissed) message queued again, with a new retry window; None if the row
    is not in one of those states."""
    row = await session.get(Outbox, row_id, with_for_update=True)
    if row is None or row.state not in ("failed", "dismissed"):
        return None
    row.state, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    row.claimed_until, row.retry_until = None, retry_until
    return row


async def dismiss(session: AsyncSession, row_id: int) -> Outbox | None:
    """Staff have seen a failed message and will not resend it: it stops counting as a
    problem (/healthz). None if the row is not failed."""
    row = await session.get(Outbox, row_id, with_for_update=True)
    if row is None or row.state != "failed":
        return None
    row.state = "dismissed"
    return row


async def problems(session: AsyncSession, *, limit: int = 200
                   ) -> list[tuple[Outbox, Submission | None]]:
    """Mail not delivered yet or failed for good (never the bytes: see ``Outbox.message``),
    oldest first, each with its submission (for the tracking number and who may see it)."""
    rows = await session.execute(
        select(Outbox, Submission).options(defer(Outbox.message))
        .outerjoin(Submission, Submission.id == Outbox.submission_id)
        .where(Outbox.state.in_(("pending", "sending", "failed")))
        .order_by(Outbox.created_at, Outbox.id).limit(limit))
    return [(o, s) for o, s in rows.all()]


async def flag_mail_failure(session: AsyncSession, submission_id: int,
                            reason: str | None) -> None:
    """Say on the letter itself that its citizen got no acknowledgement (``flags["ack_failed"]``,
    shown on its console page), or take that back (``reason`` None) when it is resent."""
    sub = await session.get(Submission, submission_id)
    if sub is None:
        return
    flags = dict(sub.flags or {})
    if reason is None:
        flags.pop("ack_failed", None)
    else:
        flags["ack_failed"] = reason
    sub.flags = flags or None


async def digest_mail(session: AsyncSession, runs: dict[str, int]
                      ) -> dict[str, list[tuple[str, str | None]]]:
    """(state, last error) of each week's digest mail, by week; ``runs`` maps a week to the
    id of its first outbox row. A week's mail is found by its signed Message-ID, whose tag is
    the week without its hyphen and the recipient's number (``digest.2026W47r0.…``,
    handlers/digest/render.py), and its first row by id in any case."""
    if not runs:
        return {}
    week_of = {first: week for week, first in runs.items()}
    tag_of = {week.replace("-", ""): week for week in runs}
    clauses: list[ColumnElement[bool]] = [Outbox.id.in_(list(week_of))]
    clauses += [Outbox.message_id.startswith(f"digest.{tag}r") for tag in tag_of]
    rows = await session.execute(
        select(Outbox.id, Outbox.message_id, Outbox.state, Outbox.last_error)
        .where(Outbox.purpose == "digest", or_(*clauses)).order_by(Outbox.id))
    out: dict[str, list[tuple[str, str | None]]] = {}
    for row_id, message_id, state, error in rows.all():
        week = week_of.get(row_id) or tag_of.get(message_id.split(".")[1].split("r")[0], "")
        if week in runs:
            out.setdefault(week, []).append((state, error))
    return out


# -- the provider's throttling and the sending caps -------------------------------------------
async def pause_state(session: AsyncSession) -> OutboxPause | None:
    return await session.get(OutboxPause, PAUSE)


async def pause(session: AsyncSession, *, until: datetime, reason: str, strikes: int) -> None:
    row = await session.get(OutboxPause, PAUSE, with_for_update=True)
    if row is None:
        session.add(OutboxPause(name=PAUSE, until=until, since=utcnow(), reason=reason[:2000],
                                strikes=strikes))
    else:
        if row.until < utcnow() and row.strikes == 0:
            row.since = utcnow()
        row.until, row.reason, row.strikes = max(row.until, until), reason[:2000], strikes


async def clear_pause(session: AsyncSession) -> None:
    """Mail went through again: the next throttling starts the backoff from the beginning."""
    await session.execute(update(OutboxPause).where(OutboxPause.name == PAUSE)
                          .values(strikes=0))


async def sent_since(session: AsyncSession, since: datetime) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(_T).where(_T.c.sent_at >= since)) or 0)


async def nth_sent_since(session: AsyncSession, since: datetime, n: int) -> datetime | None:
    """When the ``n``-th (from 0) message sent since ``since`` went out."""
    return await session.scalar(select(_T.c.sent_at).where(_T.c.sent_at >= since)
                                .order_by(_T.c.sent_at).offset(n).limit(1))


async def mark_bounced(session: AsyncSession, message_ids: list[str], reason: str) -> list[str]:
    """Mark our messages reported by a bounce; return their recipients."""
    if not message_ids:
        return []
    rows = list(await session.scalars(select(Outbox).where(Outbox.message_id.in_(message_ids))))
    for row in rows:
        row.state = "bounced"
        row.last_error = reason[:2000]
    return [r.recipient for r in rows]


async def counts_by_state(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Outbox.state, func.count()).group_by(Outbox.state))
    return {state: n for state, n in rows.all()}


async def enqueue_many(session: AsyncSession, messages: list[dict[str, object]]) -> None:
    """:func:`enqueue` for a batch, one executemany; each dict holds ``purpose``, ``recipient``,
    ``sender``, ``message_id``, ``message`` and ``submission_id`` (and ``priority``, else 0)."""
    if messages:
        now = utcnow()
        await _ENQUEUE.run_in(session, [  # the driver's executemany (storage.upsert.Bulk)
            {"priority": 0, **m, "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for m in messages])


_ENQUEUED = ("purpose", "recipient", "sender", "message_id", "message", "submission_id",
             "priority", "state", "attempts", "next_attempt_at", "created_at")
_ENQUEUE = Bulk.insert(Outbox.__table__, _ENQUEUED)


async def standing_many(session: AsyncSession, addresses: set[str], since: datetime,
                        purpose: str = "ack") -> dict[str, tuple[bool, int]]:
    """:func:`standing` for a batch: two statements whatever the number of addresses."""
    if not addresses:
        return {}
    now = utcnow()
    suppressed = set(await session.scalars(
        select(Suppression.address).where(Suppression.address.in_(addresses),
                                          Suppression.until > now)))
    counts = dict((await session.execute(
        select(Outbox.recipient, func.count())
        .where(Outbox.recipient.in_(addresses), Outbox.purpose == purpose,
               Outbox.created_at >= since)
        .group_by(Outbox.recipient))).all())
    return {a: (a in suppressed, int(counts.get(a, 0))) for a in addresses}


async def suppress(session: AsyncSession, address: str, reason: str, until: datetime) -> None:
    row = await session.get(Suppression, address)
    if row is None:
        session.add(Suppression(address=address, reason=reason, until=until))
    else:
        row.reason, row.until = reason, max(row.until, until)
