"""Repeat letters' storage (storage/repeats.py) on SQLite and PostgreSQL: a sender's open cases
by normalised address or phone, the open cases the near-duplicate index is built from, links
either way round, and purge blanking the sender keys."""

from __future__ import annotations

import re
from datetime import timedelta

from handlers.repeats import sender_keys
from storage import repeats, retention, submissions
from storage.db import utcnow


async def _add(s, n: int, *, days: float = 1, status: str = "new", addr=None, phone=None,
               text: str = "正文", **fields) -> int:
    keys = sender_keys(addr, phone)
    sub = await submissions.add(
        s, tracking_no=f"FK-R-{n:04d}", channel="web", subject=f"主题{n}", text=text,
        from_addr=addr, phone=phone, status=status,
        received_at=utcnow() - timedelta(days=days), **fields)
    await repeats.set_sender_keys(s, [(sub.id, keys.address, keys.phone)])
    return sub.id


async def test_a_senders_open_cases_across_channels(db):
    async with db.begin() as s:
        mail = await _add(s, 1, days=5, addr="Zhou.Lixin@163.com")
        call = await _add(s, 2, days=3, phone="139 6281 4570")
        form = await _add(s, 3, days=2, addr="zhou.lixin@163.com", phone="+86 139-6281-4570")
        await _add(s, 4, days=1, addr="zhoulixin@163.com")  # another mailbox on 163
        await _add(s, 5, days=4, addr="zhou.lixin@163.com", status="resolved")  # closed
        await _add(s, 6, days=200, addr="zhou.lixin@163.com")  # before the window
        await _add(s, 7, days=1, addr="zhou.lixin@163.com", auto="spam")  # machine mail
        await _add(s, 8, days=1, phone="13962814570", restricted=True)  # a 举报, same phone
    new = sender_keys("ZHOU.LIXIN@163.COM", "１３９６２８１４５７０")
    since = utcnow() - timedelta(days=90)
    async with db() as s:
        found = await repeats.open_by_sender(s, new.address, new.phone, since)
        by_phone = await repeats.open_by_sender(s, None, new.phone, since, exclude=call)
        nothing = await repeats.open_by_sender(s, None, None, since)
    assert [c.id for c in found if not c.restricted] == [mail, call, form]
    assert [c.tracking_no for c in found if c.restricted] == ["FK-R-0008"]
    assert [c.id for c in by_phone if not c.restricted] == [form]
    assert nothing == []


async def test_open_texts_are_the_window_s_open_letters_in_batches(db):
    async with db.begin() as s:
        ids = [await _add(s, n, days=n, text=f"第{n}封") for n in range(1, 6)]
        await _add(s, 20, days=1, status="rejected")
        await _add(s, 21, days=100)
    since = utcnow() - timedelta(days=90)
    async with db() as s:
        batches = [b async for b in repeats.open_texts(s, since, batch=2)]
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [c.id for b in batches for c in b] == sorted(ids)
    assert batches[0][0].text == "第1封"


async def test_links_either_way_round_once(db):
    async with db.begin() as s:
        a = await _add(s, 1, days=3)
        b = await _add(s, 2, days=2, restricted=True)
        c = await _add(s, 3, days=1)
        assert await repeats.add_links(s, [(c, a, repeats.CONTENT, 0.31),
                                           (c, b, repeats.SENDER, None)]) == 2
        # The same pairs again, or the other way round: nothing new.
        assert await repeats.add_links(s, [(a, c, repeats.CONTENT, 0.5),
                                           (c, b, repeats.SENDER, None), (a, a, "x", None)]) == 0
    async with db() as s:
        of_c = await repeats.links_of(s, c)
        of_a = await repeats.links_of(s, a)
    assert [(x.id, x.kind, x.restricted) for x in of_c] == [
        (a, "content", False), (b, "sender", True)]
    assert of_c[0].score == 0.31
    assert [(x.tracking_no, x.kind) for x in of_a] == [("FK-R-0003", "content")]
    async with db.begin() as s:
        assert await repeats.unlink(s, a, c)
        assert not await repeats.unlink(s, c, a)
    async with db() as s:
        assert [x.id for x in await repeats.links_of(s, c)] == [b]


async def test_unkeyed_lists_letters_from_before_the_keys_and_purge_blanks_them(db):
    async with db.begin() as s:
        old = (await submissions.add(s, tracking_no="FK-R-0100", channel="email", subject="",
                                     text="", from_addr="a@163.com", phone=None,
                                     received_at=utcnow())).id
        await submissions.add(s, tracking_no="FK-R-0101", channel="phone", subject="", text="",
                              received_at=utcnow())  # no address, no phone: nothing to key
        keyed = await _add(s, 102, addr="b@163.com", phone="13912345678", status="resolved")
    since = utcnow() - timedelta(days=90)
    async with db() as s:
        assert await repeats.unkeyed(s, since) == [(old, "a@163.com", None)]
    async with db.begin() as s:
        await retention.purge_submission(s, keyed, 1095)
    async with db() as s:
        row = await submissions.by_tracking_no(s, "FK-R-0102")
    assert row.sender_addr_key is None and row.sender_phone_key is None


async def test_links_stored_in_bulk_hold_what_a_plain_insert_writes(db):
    """``add_links`` writes through the driver's executemany (``storage.upsert.Bulk``) with the
    dialect's own bind processing: the stored values, as the database holds them (SQLite keeps
    a datetime as text in SQLAlchemy's format), are those of an ordinary INSERT."""
    from sqlalchemy import insert, text

    from storage.models import SubmissionLink

    at = utcnow()
    async with db.begin() as s:
        a, b, c = [await _add(s, n) for n in (1, 2, 3)]
        await repeats.add_links(s, [(c, a, repeats.CONTENT, 0.25)])
        await s.execute(insert(SubmissionLink), [{"submission_id": c, "related_id": b,
                                                  "kind": repeats.CONTENT, "score": 0.25,
                                                  "created_at": at}])
    async with db() as s:
        rows = (await s.execute(text(
            "SELECT related_id, kind, score, CAST(created_at AS TEXT) FROM submission_links"
            " WHERE submission_id = :c ORDER BY related_id"), {"c": c})).all()
    bulk, plain = rows
    assert (bulk[0], plain[0]) == (a, b)
    assert bulk[1:3] == plain[1:3] == (repeats.CONTENT, 0.25)
    # The same text form (written a moment apart: compared digit for digit as a shape)
    def shape(value: str) -> str:
        return re.sub(r"\d", "0", re.sub(r"\.\d+", "", value))

    assert shape(bulk[3]) == shape(plain[3]) and bulk[3][:10] == plain[3][:10]


async def test_a_writers_open_cases_are_found_by_the_key_indexes(tmp_path):
    """The intake looks up each batch's writers (``open_by_keys``) and staff a case's writer
    (``open_by_sender``): on SQLite without statistics (a fresh database, the service's normal
    state between ANALYZE runs) the plan reads the key indexes, not every open letter by the
    (auto, category) index, which made each intake batch read the whole window."""
    import sqlite3

    from sqlalchemy import event

    from storage.db import make_engine, sessionmaker, upgrade

    path = tmp_path / "plans.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seen: list[tuple[str, object]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, parameters))

    since = utcnow() - timedelta(days=90)
    try:
        async with sessionmaker(engine)() as s:
            await repeats.open_by_keys(s, {"a@163.com", "b@qq.com"}, {"13962814570"}, since)
            await repeats.open_by_keys(s, {"a@163.com"}, set(), since)
            await repeats.open_by_sender(s, "a@163.com", "13962814570", since, exclude=1)
    finally:
        await engine.dispose()
    con = sqlite3.connect(path)
    try:
        plans = [[row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql, params)]
                 for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]
    finally:
        con.close()
    assert len(plans) == 3
    for plan in plans:
        used = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
        assert used and all("sender_addr_key" in s or "sender_phone_key" in s for s in used), plan


async def test_links_of_a_batch_each_keep_their_own_values(db):
    """Bulk binds a batch column by column, each value object once: every row still gets its
    own case, kind and score, and the batch's one created_at."""
    from sqlalchemy import text

    async with db.begin() as s:
        ids = [await _add(s, n) for n in range(1, 8)]
        new = ids[-1]
        links = [(new, old, repeats.SENDER if k % 2 else repeats.CONTENT,
                  None if k == 3 else round(0.1 * (k + 1), 2)) for k, old in enumerate(ids[:-1])]
        assert await repeats.add_links(s, links) == len(links)
    async with db() as s:
        rows = (await s.execute(text(
            "SELECT related_id, kind, score, CAST(created_at AS TEXT) FROM submission_links"
            " WHERE submission_id = :c ORDER BY related_id"), {"c": new})).all()
    assert [tuple(r[:3]) for r in rows] == [(old, kind, score) for _, old, kind, score in links]
    assert len({r[3] for r in rows}) == 1
