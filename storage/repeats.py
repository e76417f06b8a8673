"""Repeat letters (并单): the lookups the matcher needs, and the links it finds.

``handlers.repeats`` computes a writer's keys (address and phone in one spelling) and compares
letters; this module reads and writes what it works on. A sender's open cases are found by those
keys (indexed columns, migration 0009); the near-duplicate index is built from the open cases
received in the look-back window; a link between two cases is one ``submission_links`` row.

Confidentiality: a link to or from a 举报 says who wrote it (the same sender as a case a reviewer
can read) or what it is about. Every row returned here carries each case's ``restricted`` flag
so that readers show such links only to the roles SECURITY.md names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import SQLColumnExpression, and_, bindparam, delete, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import UpdateBase

from storage.db import rowcount, utcnow
from storage.models import Submission, SubmissionLink
from storage.upsert import Bulk, dialect_module
from storage.workflow import OPEN_STATUSES

SENDER = "sender"
CONTENT = "content"
MERGED = "merged"  # linked by staff's 并单 (handlers/casework.py)
SPAM = "spam"


@dataclass(frozen=True)
class Case:
    """An open case as the matcher and the console's hint need it: never its text."""

    id: int
    tracking_no: str
    received_at: datetime
    restricted: bool


@dataclass(frozen=True)
class CaseText:
    """An open case's words, for the near-duplicate index."""

    id: int
    subject: str
    text: str
    restricted: bool
    received_at: datetime | None = None


@dataclass(frozen=True)
class Link:
    """One linked case, seen from the case asked about."""

    id: int
    tracking_no: str
    kind: str
    score: float | None
    restricted: bool
    status: str = ""


def _open(since: datetime, by_writer: bool = False) -> ColumnElement[bool]:
    """Open cases of the window, not machine mail nor spam. ``by_writer``: for a lookup by the
    writer's keys, whose indexes find a few rows; the other terms are then written so that no
    index serves them (``auto || ''``, as in ``storage.review_list``): they match nearly every
    row, yet without fresh statistics SQLite took the (auto, category) or the (status,
    received_at) index and read every letter of the window for each intake batch."""
    status: SQLColumnExpression[Any] = Submission.status
    auto: SQLColumnExpression[Any] = Submission.auto
    category: SQLColumnExpression[Any] = Submission.category
    if by_writer:
        status, auto, category = status.concat(""), auto.concat(""), category.concat("")
    return and_(status.in_(OPEN_STATUSES), Submission.received_at >= since,
                auto.is_(None), category != SPAM)


@dataclass(frozen=True)
class SenderCase(Case):
    """An open case found by its writer's keys, with the keys it was found by."""

    address_key: str | None = None
    phone_key: str | None = None


async def open_by_keys(session: AsyncSession, addresses: set[str], phones: set[str],
                       since: datetime) -> list[SenderCase]:
    """Open cases received since ``since`` whose writer has any of these address or phone
    keys, oldest first: :func:`open_by_sender` for a whole intake batch in one statement."""
    keys = []
    if addresses:
        keys.append(Submission.sender_addr_key.in_(addresses))
    if phones:
        keys.append(Submission.sender_phone_key.in_(phones))
    if not keys:
        return []
    rows = await session.execute(
        select(Submission.id, Submission.tracking_no, Submission.received_at,
               Submission.restricted, Submission.sender_addr_key, Submission.sender_phone_key)
        .where(or_(*keys), _open(since, by_writer=True))
        .order_by(Submission.received_at, Submission.id))
    return [SenderCase(i, tn, at, bool(r), a, p) for i, tn, at, r, a, p in rows.all()]


async def still_open(session: AsyncSession, ids: set[int], since: datetime) -> set[int]:
    """Which of ``ids`` are open cases received since ``since``: the in-memory index may hold a
    case closed by another instance, or filed in a transaction that was rolled back."""
    if not ids:
        return set()
    return set(await session.scalars(
        select(Submission.id).where(Submission.id.in_(ids), _open(since))))


async def open_by_sender(session: AsyncSession, address: str | None, phone: str | None,
                         since: datetime, exclude: int | None = None) -> list[Case]:
    """Open cases received since ``since`` whose writer has this address key or phone key,
    oldest first (the first is the one a repeat would be merged into)."""
    keys = []
    if address:
        keys.append(Submission.sender_addr_key == address)
    if phone:
        keys.append(Submission.sender_phone_key == phone)
    if not keys:
        return []
    stmt = (select(Submission.id, Submission.tracking_no, Submission.received_at,
                   Submission.restricted)
            .where(or_(*keys), _open(since, by_writer=True))
            .order_by(Submission.received_at, Submission.id))
    if exclude is not None:
        stmt = stmt.where(Submission.id != exclude)
    return [Case(*row) for row in (await session.execute(stmt)).all()]


async def open_texts(session: AsyncSession, since: datetime,
                     batch: int = 1000) -> AsyncIterator[list[CaseText]]:
    """The open cases received since ``since`` (machine mail and spam left out), in batches by
    id: what the near-duplicate index is built from when the service starts."""
    last = 0
    while True:
        rows = (await session.execute(
            select(Submission.id, Submission.subject, Submission.text, Submission.restricted,
                   Submission.received_at)
            .where(_open(since), Submission.id > last).order_by(Submission.id).limit(batch)
        )).all()
        if not rows:
            return
        yield [CaseText(i, s or "", t or "", bool(r), at) for i, s, t, r, at in rows]
        last = rows[-1][0]


async def set_sender_keys(session: AsyncSession,
                          keys: list[tuple[int, str | None, str | None]]) -> None:
    """Store (id, address key, phone key) of submissions, one executemany."""
    await _SET_KEYS.run_in(session, [{"sid": i, "addr": a, "tel": p} for i, a, p in keys])


def _set_keys(_dialect: Dialect) -> UpdateBase:
    table = Submission.__table__
    return (update(table).where(table.c.id == bindparam("sid"))
            .values(sender_addr_key=bindparam("addr"), sender_phone_key=bindparam("tel")))


_SET_KEYS = Bulk(_set_keys)


async def unkeyed(session: AsyncSession, since: datetime, limit: int = 1000,
                  after: int = 0) -> list[tuple[int, str | None, str | None]]:
    """(id, from_addr, phone) of open cases since ``since`` that have an address or phone but
    no keys yet: letters stored before migration 0009, for the service to key once. ``after``:
    ids above this only (an address that yields no key stays unkeyed; a caller pages past it)."""
    rows = await session.execute(
        select(Submission.id, Submission.from_addr, Submission.phone)
        .where(_open(since), Submission.id > after, Submission.sender_addr_key.is_(None),
               Submission.sender_phone_key.is_(None),
               or_(Submission.from_addr.is_not(None), Submission.phone.is_not(None)))
        .order_by(Submission.id).limit(limit))
    return [(i, a, p) for i, a, p in rows.all()]


def _insert_link(dialect: Dialect) -> UpdateBase:
    table = SubmissionLink.__table__
    return dialect_module(dialect).insert(table).values(
        {c: bindparam(c) for c in ("submission_id", "related_id", "kind", "score", "created_at")}
    ).on_conflict_do_nothing()


_INSERT_LINK = Bulk(_insert_link)


async def add_links(session: AsyncSession,
                    links: list[tuple[int, int, str, float | None]]) -> int:
    """Store (new case, earlier case, kind, score) links; a pair already linked (either way
    round) is left as it is. Returns how many were added."""
    rows = []
    seen: set[tuple[int, int]] = set()  # each pair as (smaller id, larger id)
    seen_order: list[tuple[int, int]] = []  # the pair of each row
    new_ids: set[int] = set()
    now = utcnow()
    for sid, rid, kind, score in links:
        pair = (sid, rid) if sid < rid else (rid, sid)
        if sid == rid or pair in seen:
            continue
        seen.add(pair)
        seen_order.append(pair)
        new_ids.add(sid)
        rows.append({"submission_id": sid, "related_id": rid, "kind": kind, "score": score,
                     "created_at": now})
    if not rows:
        return 0
    # The pairs stored before, either way round: read by the new cases' ids (IN lists, in
    # chunks) and matched here. One OR term per pair made SQLite's expression tree too deep
    # (its limit is 1000) for a batch of letters about one event.
    existing: set[tuple[int, int]] = set()
    ordered = sorted(new_ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        existing.update((a, b) if a < b else (b, a) for a, b in (await session.execute(
            select(SubmissionLink.submission_id, SubmissionLink.related_id)
            .where(or_(SubmissionLink.related_id.in_(chunk),
                       SubmissionLink.submission_id.in_(chunk))))).all())
    if existing:
        rows = [r for r, pair in zip(rows, seen_order, strict=True) if pair not in existing]
    # Run as the driver's executemany (a campaign's batch writes about ten links a letter);
    # ON CONFLICT still leaves alone a pair another instance stored meanwhile.
    await _INSERT_LINK.run_in(session, rows)
    return len(rows)


async def links_of(session: AsyncSession, submission_id: int) -> list[Link]:
    """The cases linked to this one, either way round, oldest case first."""
    other = SubmissionLink.related_id
    mine = select(other.label("other"), SubmissionLink.kind, SubmissionLink.score).where(
        SubmissionLink.submission_id == submission_id)
    theirs = select(SubmissionLink.submission_id.label("other"), SubmissionLink.kind,
                    SubmissionLink.score).where(SubmissionLink.related_id == submission_id)
    both = mine.union_all(theirs).subquery()
    rows = await session.execute(
        select(Submission.id, Submission.tracking_no, both.c.kind, both.c.score,
               Submission.restricted, Submission.status)
        .join(both, both.c.other == Submission.id)
        .order_by(Submission.received_at, Submission.id))
    return [Link(i, tn, kind, score, bool(r), st) for i, tn, kind, score, r, st in rows.all()]


async def links_many(session: AsyncSession, ids: list[int]) -> dict[int, list[Link]]:
    """:func:`links_of` for a page of cases, in two statements: id → its links."""
    if not ids:
        return {}
    wanted = set(ids)
    pairs = (await session.execute(
        select(SubmissionLink.submission_id, SubmissionLink.related_id, SubmissionLink.kind,
               SubmissionLink.score)
        .where(or_(SubmissionLink.submission_id.in_(wanted),
                   SubmissionLink.related_id.in_(wanted))))).all()
    others = {b for a, b, _k, _s in pairs} | {a for a, b, _k, _s in pairs}
    cases = {i: (tn, bool(r), st) for i, tn, r, st in (await session.execute(
        select(Submission.id, Submission.tracking_no, Submission.restricted, Submission.status)
        .where(Submission.id.in_(others)))).all()} if others else {}
    out: dict[int, list[Link]] = {i: [] for i in ids}
    for a, b, kind, score in pairs:
        for mine, other in ((a, b), (b, a)):
            if mine in wanted and other in cases:
                tn, restricted, status = cases[other]
                out[mine].append(Link(other, tn, kind, score, restricted, status))
    return out


@dataclass(frozen=True)
class Merged:
    """A case merged into another (the carrying case's page lists them)."""

    id: int
    tracking_no: str
    restricted: bool


async def merged_into(session: AsyncSession, carrier_id: int) -> list[Merged]:
    """The cases merged into ``carrier_id``, oldest first."""
    rows = await session.execute(
        select(Submission.id, Submission.tracking_no, Submission.restricted)
        .where(Submission.merged_into_id == carrier_id).order_by(Submission.id))
    return [Merged(i, tn, bool(r)) for i, tn, r in rows.all()]


async def repoint(session: AsyncSession, old: int, new: int) -> list[int]:
    """Cases merged into ``old`` are carried by ``new`` from now on (``old`` was merged into
    ``new``): the pointer stays one step long. Returns their ids."""
    ids = list(await session.scalars(
        select(Submission.id).where(Submission.merged_into_id == old).order_by(Submission.id)))
    if ids:
        await session.execute(update(Submission).where(Submission.id.in_(ids))
                              .values(merged_into_id=new, updated_at=utcnow())
                              .execution_options(synchronize_session=False))
    return ids


async def unlink(session: AsyncSession, a: int, b: int) -> bool:
    """Remove the link between two cases (either way round); whether there was one."""
    result = await session.execute(delete(SubmissionLink).where(or_(
        and_(SubmissionLink.submission_id == a, SubmissionLink.related_id == b),
        and_(SubmissionLink.submission_id == b, SubmissionLink.related_id == a))))
    return bool(rowcount(result))
