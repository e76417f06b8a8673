"""The service's repeat index (bot/repeat_index.py) on SQLite and PostgreSQL: built at start
from the open cases of the look-back window (closed, old, spam and machine mail left out),
letters stored before migration 0009 given their writer's keys, and cases dropping out of the
window once they are older than it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import Service, start
from bot.repeat_index import build
from storage import submissions
from storage.db import utcnow
from storage.models import Submission
from tests.conftest import make_settings

EVENT = ("幸福里小区东门的垃圾站已经一个多月没人清运，垃圾堆到路上，夏天臭气熏天，苍蝇蚊子"
         "到处飞，居民出门都要捂着鼻子。希望街道环卫所尽快清运并定期清理。")


async def test_the_index_holds_the_windows_open_letters_and_old_letters_get_keys(
        db, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, repeats={"window_days": 30})
    rows = {  # name: (days ago, status, extra fields)
        "open": (2, "new", {}), "accepted": (10, "accepted", {}), "closed": (3, "resolved", {}),
        "old": (40, "new", {}), "spam": (1, "new", {"category": "spam"}),
        "machine": (1, "new", {"auto": "autoreply"}), "leaving": (29.99, "new", {}),
    }
    ids = {}
    async with db.begin() as s:
        for n, (name, (days, status, extra)) in enumerate(rows.items()):
            sub = await submissions.add(
                s, tracking_no=f"FK-I-{n:04d}", channel="email", subject="垃圾站", text=EVENT,
                from_addr=f"Writer.{name}@163.COM", phone="0513-8509 1234", status=status,
                received_at=utcnow() - timedelta(days=days), **extra)
            ids[name] = sub.id
    index = await build(db, settings)
    assert {name for name, sid in ids.items() if sid in index} == {"open", "accepted", "leaving"}
    probe = index.sign("东门垃圾站", EVENT)
    assert {m.case_id for m in index.query(probe)} == {ids["open"], ids["accepted"],
                                                        ids["leaving"]}
    async with db() as s:
        keys = {sid: (a, p) for sid, a, p in (await s.execute(
            select(Submission.id, Submission.sender_addr_key, Submission.sender_phone_key)
        )).all()}
    # Keyed once, in the one spelling the intake writes: the window's open letters only.
    assert keys[ids["open"]] == ("writer.open@163.com", "051385091234")
    assert keys[ids["closed"]] == (None, None) and keys[ids["old"]] == (None, None)
    # A case received just inside the window leaves it as time passes.
    assert index.prune(utcnow() - timedelta(days=29.98)) == 1
    assert ids["leaving"] not in index and ids["open"] in index


async def test_the_service_settles_its_heap_once_the_index_is_built(
        db_url: str, tmp_path: Path) -> None:
    """``serve`` freezes what lives as long as the process, so the garbage collector's full
    collections stop walking it; the repeat index (and the modules it imports) is built after
    start, so the intake worker settles again once it exists, before filing under load."""
    seen: list[bool] = []
    done = asyncio.Event()
    service: Service | None = None

    def settle() -> None:
        seen.append(service is not None and service.runtime.repeats is not None)
        done.set()

    service = await start(make_settings(db_url, tmp_path), settle=settle)
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await service.stop()
    assert seen == [True]


async def test_letters_prepared_beside_an_empty_index_are_signed_ahead(
        db, db_url: str, tmp_path: Path) -> None:
    """A service starting on a database without open cases has an empty index: the letters it
    prepares (in a thread, without prepare processes) are still signed ahead, outside the
    filing transaction. The context had tested the index for truth, i.e. its length."""
    from bot.runtime import Runtime
    from handlers import pipeline
    from handlers.step import Intake

    settings = make_settings(db_url, tmp_path)
    rt = Runtime.create(settings, with_classifier=False)
    try:
        rt.repeats = await build(rt.sessions, settings)
        assert len(rt.repeats) == 0
        ctx = rt.context(None)  # type: ignore[arg-type]  # prepare needs no session
        raw = (f"From: 居民 <jumin@163.com>\r\nTo: x@example.gov.cn\r\nSubject: 垃圾站\r\n"
               f"Message-ID: <e.1@163.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               f"{EVENT}\r\n").encode()
        intake = Intake(raw_id=1, channel="email", received_at=utcnow(), raw=raw)
        pipeline.prepare([intake], ctx)
        assert intake.signature is not None and len(intake.signature.shingles)
    finally:
        await rt.close()
