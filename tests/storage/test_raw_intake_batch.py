"""The web form's batch write, on both backends: what it stores reads back through the ORM
exactly as the letter was posted."""

from __future__ import annotations

import functools
from datetime import timedelta

from sqlalchemy import select

from handlers import tracking
from storage import raw_intake
from storage.db import utcnow
from storage.models import RawIntake

DRAW = functools.partial(tracking.new_tracking_nos, prefix="ZF")
LETTER = {"fields": {"name": "张三", "email": "zhang@qq.com", "body": "小区门口的路灯坏了三个月，晚上很危险。"}}


def letter(key: str, body: str = "", note: str | None = None) -> dict:
    payload = {"fields": {**LETTER["fields"], "body": LETTER["fields"]["body"] + body}}
    return {"source_key": key, "payload": payload, "discard_note": note}


async def test_a_batch_reads_back_as_posted(db, db_url: str):
    t0 = utcnow()
    first = await db.run_write(raw_intake.store_letters, [
        letter("web:a", "一"), letter("web:b", "二"), letter("web:a", "重复"),
        letter("web:bot", note="honeypot field filled")], DRAW)
    assert set(first) == {"web:a", "web:b", "web:bot"}
    assert first["web:bot"] is None
    assert first["web:a"] != first["web:b"] and first["web:a"].startswith("ZF-")
    # sent again, alone and beside a new one: the first numbers, one row each
    again = await db.run_write(raw_intake.store_letters,
                               [letter("web:a", "再次"), letter("web:c", "三")], DRAW)
    assert again["web:a"] == first["web:a"] and again["web:c"] not in first.values()
    async with db() as s:
        rows = {r.source_key: r for r in await s.scalars(select(RawIntake))}
    assert set(rows) == {"web:a", "web:b", "web:bot", "web:c"}
    a = rows["web:a"]
    assert a.payload == letter("web:a", "一")["payload"]  # the first post's text, intact
    assert (a.channel, a.state, a.attempts, a.tracking_no) == ("web", "pending", 0, first["web:a"])
    assert t0 - timedelta(seconds=1) <= a.received_at.replace(tzinfo=t0.tzinfo) <= utcnow()
    bot = rows["web:bot"]
    assert (bot.state, bot.error, bot.tracking_no) == ("discarded", "honeypot field filled", None)
    assert bot.processed_at is not None
    assert rows["web:c"].payload["fields"]["body"].endswith("三")


async def test_a_batch_larger_than_a_chunk_is_stored_whole(db, db_url: str):
    """A rush can hand the writer hundreds of letters; they go in several statements of one
    transaction, each with its own number."""
    n = raw_intake.CHUNK * 2 + 5
    numbers = await db.run_write(raw_intake.store_letters,
                                 [letter(f"web:big{i}", str(i)) for i in range(n)], DRAW)
    assert len(numbers) == n and len(set(numbers.values())) == n
    async with db() as s:
        rows = {r.source_key: r for r in await s.scalars(select(RawIntake))}
    assert len(rows) == n
    assert rows["web:big130"].payload["fields"]["body"].endswith("130")
    assert rows["web:big130"].tracking_no == numbers["web:big130"]
