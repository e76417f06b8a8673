"""The writers of raw rows and the one draw of tracking numbers, on both backends.

The mail sources write through the async ``add``/``add_many``, the web form through the
synchronous ``store_letters``: the same input must come out as the same row either way. A
tracking number is given to one letter only, whether the form or the store step draws it, and
whether the letter holding it is filed already or still waiting in raw intake.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from handlers import tracking
from storage import raw_intake, submissions
from storage.models import RawIntake

DRAW = functools.partial(tracking.new_tracking_nos, prefix="ZF")
PAYLOAD = {"fields": {"name": "李四", "email": "li.si@163.com", "phone": "13800000000",
                      "body": "村口的桥栏杆断了两处，孩子上学要经过。\n请尽快修一下！\u00a0☂"},
           "attachments": [{"filename": "桥栏杆.jpg", "content_type": "image/jpeg",
                            "sha256": "ab" * 32, "size": 5120}]}


def scripted(first: list[str]) -> Callable[[int], list[str]]:
    """The draw, giving these numbers first: the collision that 40 random bits make once in a
    lifetime, made to happen now."""
    queue = list(first)

    def draw(n: int) -> list[str]:
        out = queue[:n]
        del queue[:n]
        return out + DRAW(n - len(out))
    return draw


def letter(key: str, note: str | None = None) -> dict[str, Any]:
    return {"source_key": key, "payload": PAYLOAD, "discard_note": note}


def columns(row: RawIntake) -> dict[str, Any]:
    """Every column of a stored row but its id and source key."""
    return {c.key: getattr(row, c.key) for c in RawIntake.__table__.columns
            if c.key not in ("id", "source_key")}


async def rows(db) -> dict[str, RawIntake]:  # type: ignore[no-untyped-def]
    async with db() as s:
        return {r.source_key: r for r in await s.scalars(select(RawIntake))}


async def test_the_form_batch_and_the_async_writers_store_the_same_row(db, db_url: str):
    numbers = await db.run_write(raw_intake.store_letters, [
        letter("web:sync"), letter("web:sync-bot", "honeypot field filled")], DRAW)
    sync = await rows(db)
    done, bot = sync["web:sync"], sync["web:sync-bot"]
    assert (done.tracking_no, bot.tracking_no) == (numbers["web:sync"], None)
    same = {"channel": "web", "payload": PAYLOAD, "tracking_no": done.tracking_no,
            "received_at": done.received_at}
    same_bot = {"channel": "web", "payload": PAYLOAD, "received_at": bot.received_at,
                "state": "discarded", "error": "honeypot field filled",
                "processed_at": bot.processed_at}
    async with db.begin() as s:
        await raw_intake.add_many(s, [{"source_key": "web:many", **same},
                                      {"source_key": "web:many-bot", **same_bot}])
        await raw_intake.add(s, source_key="web:one", **same)
        await raw_intake.add(s, source_key="web:one-bot", **same_bot)
    stored = await rows(db)
    for key in ("web:many", "web:one"):
        assert columns(stored[key]) == columns(done)
    for key in ("web:many-bot", "web:one-bot"):
        assert columns(stored[key]) == columns(bot)
    assert done.payload == PAYLOAD and (done.state, done.attempts) == ("pending", 0)
    # and the same text as the database holds it: SQLite compares dates as text, so a form
    # row written in the driver's format ("…+00:00") sorted against the others by accident
    async with db() as s:
        held = dict((await s.execute(text(
            "SELECT source_key, CAST(received_at AS TEXT) || '|' || "
            "COALESCE(CAST(processed_at AS TEXT), '') FROM raw_intake"))).all())
    assert held["web:many"] == held["web:one"] == held["web:sync"]
    assert held["web:many-bot"] == held["web:one-bot"] == held["web:sync-bot"]


async def test_a_row_with_a_column_raw_intake_does_not_have_is_refused(db, db_url: str):
    async with db.begin() as s:
        with pytest.raises(TypeError, match="'tracking'"):
            await raw_intake.add(s, channel="web", source_key="web:typo", tracking=None)


async def test_the_form_never_gives_out_a_number_a_letter_holds(db, db_url: str):
    """A web letter waiting to be filed holds its number already, as does a quarantined one
    staff may requeue and every filed submission: a new letter drawing one of them gets
    another, or two citizens would be told the same number."""
    waiting = (await db.run_write(raw_intake.store_letters, [letter("web:waiting")], DRAW))
    async with db.begin() as s:
        await raw_intake.add(s, channel="web", source_key="web:stuck", payload=PAYLOAD,
                             tracking_no="ZF-STUC-K000", state="quarantined", attempts=5)
        await submissions.add(s, tracking_no="ZF-FILE-D000", channel="web", subject="",
                              text="来信")
    held = [waiting["web:waiting"], "ZF-STUC-K000", "ZF-FILE-D000"]
    for n, tn in enumerate(held):
        got = await db.run_write(raw_intake.store_letters, [letter(f"web:new{n}")],
                                 scripted([tn]))
        assert got[f"web:new{n}"] not in held
    numbers = [r.tracking_no for r in (await rows(db)).values()] + ["ZF-FILE-D000"]
    assert len(numbers) == len(set(numbers)) == 6


async def test_the_store_step_keeps_free_numbers_and_replaces_held_ones(db, db_url: str):
    """The store step drafted acknowledgements with the numbers it drew ahead: a free one
    stays where it is; one a letter holds, or one drawn twice in the batch, is drawn again."""
    waiting = (await db.run_write(raw_intake.store_letters, [letter("web:waiting")], DRAW))
    pending = waiting["web:waiting"]
    async with db.begin() as s:
        await submissions.add(s, tracking_no="ZF-FILE-D000", channel="web", subject="",
                              text="来信")
    drawn = [pending, "ZF-FREE-0001", "ZF-FILE-D000", "ZF-FREE-0001", "ZF-FREE-0002"]
    again = scripted(["ZF-FREE-0002", "ZF-FREE-0003", pending])
    async with db.begin() as s:
        fresh = await raw_intake.fresh_tracking_nos_in(s, drawn, again)
    assert fresh[1] == "ZF-FREE-0001" and fresh[4] == "ZF-FREE-0002"
    assert fresh[2] == "ZF-FREE-0003"
    assert len(set(fresh)) == 5 and not {pending, "ZF-FILE-D000"} & set(fresh)
