"""Mailbox bookkeeping: the IMAP cursor per (mailbox, UIDVALIDITY) and the poller's lease.

The IMAP poller (``bot.sources.imap``) remembers the last UID it stored in ``mail_cursors``, in the
same transaction as the raw rows, so a crash can never advance the cursor past unstored mail nor
store mail twice. A new UIDVALIDITY gets a new cursor row; the old rows tell the poller that the
server renumbered the folder, so it then recognises mail it already has by Message-ID.

Several instances may share one database; only one may poll a given mailbox. It holds a row in
``leases`` that it renews; whoever finds the row expired takes it over with one atomic UPDATE.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount, utcnow
from storage.models import Lease, MailCursor, RawIntake
from storage.upsert import dialect_module

# -- cursor ------------------------------------------------------------------------------------

async def last_uid(session: AsyncSession, mailbox: str, uidvalidity: int) -> int:
    """The highest UID already stored from this mailbox under this UIDVALIDITY (0: none)."""
    found = await session.scalar(
        select(MailCursor.last_uid).where(
            MailCursor.mailbox == mailbox, MailCursor.uidvalidity == uidvalidity
        )
    )
    return int(found or 0)


async def renumbered(session: AsyncSession, mailbox: str, uidvalidity: int) -> bool:
    """Whether this mailbox was read before under another UIDVALIDITY (the server renumbered)."""
    found = await session.scalar(
        select(MailCursor.id)
        .where(MailCursor.mailbox == mailbox, MailCursor.uidvalidity != uidvalidity)
        .limit(1)
    )
    return found is not None


async def advance(session: AsyncSession, mailbox: str, uidvalidity: int, uid: int) -> None:
    """Move the cursor forward to ``uid`` (never backwards, whoever else wrote it meanwhile)."""
    now = utcnow()
    await session.execute(
        dialect_module(session).insert(MailCursor)
        .values(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=uid, updated_at=now)
        .on_conflict_do_nothing()
    )
    await session.execute(
        update(MailCursor)
        .where(
            MailCursor.mailbox == mailbox,
            MailCursor.uidvalidity == uidvalidity,
            MailCursor.last_uid < uid,
        )
        .values(last_uid=uid, updated_at=now)
    )


async def known_under_other_validity(
    session: AsyncSession, message_id: str, key_prefix: str, current_prefix: str
) -> bool:
    """Whether mail with this Message-ID was stored from the same folder before a renumbering.

    ``key_prefix`` is ``imap:<folder>:`` and ``current_prefix`` ``imap:<folder>:<uidvalidity>:``.
    """
    found = await session.scalar(
        select(RawIntake.id)
        .where(
            RawIntake.message_id == message_id,
            RawIntake.source_key.startswith(key_prefix, autoescape=True),
            ~RawIntake.source_key.startswith(current_prefix, autoescape=True),
        )
        .limit(1)
    )
    return found is not None


# -- lease -------------------------------------------------------------------------------------

async def acquire_lease(session: AsyncSession, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False while someone else holds it.

    The first ever call inserts the row (insert-ignore: two instances starting together cannot
    both insert); later calls take it over with one atomic UPDATE that only matches when the
    lease expired or is already ours, so two instances can never both succeed.
    """
    now = utcnow()
    inserted = await session.execute(
        dialect_module(session).insert(Lease)
        .values(name=name, holder=holder, expires_at=now + ttl)
        .on_conflict_do_nothing()
        .returning(Lease.name)
    )
    if inserted.scalar_one_or_none() is not None:
        return True
    result = await session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.expires_at < now, Lease.holder == holder))
        .values(holder=holder, expires_at=now + ttl)
    )
    return rowcount(result) == 1


async def release_lease(session: AsyncSession, name: str, holder: str) -> None:
    """Give the lease up at a clean shutdown so that another instance need not wait it out."""
    await session.execute(
        update(Lease)
        .where(and_(Lease.name == name, Lease.holder == holder))
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )


async def lease_holder(session: AsyncSession, name: str) -> tuple[str, datetime] | None:
    """(holder, expires_at) of a lease, for status pages and tests."""
    row = (await session.execute(
        select(Lease.holder, Lease.expires_at).where(Lease.name == name)
    )).first()
    return (row[0], row[1]) if row else None
