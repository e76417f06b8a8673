"""The intake's batch writes that go through the driver's executemany (``storage.upsert.Bulk``):
queued acknowledgements and the raw rows' end states read back, on SQLite and PostgreSQL, as
what an ORM write of the same values holds (SQLite keeps a time as text in SQLAlchemy's form)."""

from __future__ import annotations

import re

from sqlalchemy import select, text

from storage import outbox, raw_intake
from storage.db import utcnow
from storage.models import Outbox, RawIntake


def shape(value: str) -> str:
    """A stored time's text with every digit a 0 and no fraction: the form, not the moment."""
    return re.sub(r"\d", "0", re.sub(r"\.\d+", "", value))


async def test_queued_mail_and_raw_end_states_read_back_as_written(db):
    async with db.begin() as s:
        ids = await raw_intake.add_many(s, [
            {"channel": "email", "source_key": f"imap:b:{n}", "raw": b"x", "payload": None,
             "message_id": f"m{n}@x", "received_at": utcnow()} for n in range(3)])
        ordinary = Outbox(purpose="ack", recipient="orm@qq.com", sender="fb@x", message_id="o@x",
                          message=b"orm", state="pending", attempts=0, next_attempt_at=utcnow(),
                          created_at=utcnow())
        s.add(ordinary)
        await outbox.enqueue_many(s, [
            {"purpose": "ack", "recipient": f"c{n}@163.com", "sender": "fb@x",
             "message_id": f"q{n}@x", "message": f"信{n}".encode(), "submission_id": None}
            for n in range(3)] + [{"purpose": "urgent", "recipient": "duty@x", "sender": "fb@x",
                                  "message_id": "u@x", "message": b"u", "submission_id": None,
                                  "priority": 9}])
        raw_ids = sorted(ids.values())
        await raw_intake.mark_done_many(s, [
            {"id": raw_ids[0], "state": "done", "submission_id": None, "auto": None,
             "auto_reason": None, "error": None},
            {"id": raw_ids[1], "state": "discarded", "submission_id": None, "auto": "bounce",
             "auto_reason": "退信", "error": "重复的 Message-ID"}])
    async with db() as s:
        queued = list(await s.scalars(select(Outbox).order_by(Outbox.id)))
        raws = {r.id: r for r in await s.scalars(select(RawIntake))}
        times = (await s.execute(text(
            "SELECT CAST(next_attempt_at AS TEXT), CAST(created_at AS TEXT) FROM outbox"
            " ORDER BY id"))).all()
        done_at = (await s.execute(text(
            "SELECT CAST(processed_at AS TEXT) FROM raw_intake WHERE processed_at IS NOT NULL"
        ))).scalars().all()
    assert [(q.recipient, q.message, q.priority, q.state, q.attempts) for q in queued] == [
        ("orm@qq.com", b"orm", 0, "pending", 0),
        *[(f"c{n}@163.com", f"信{n}".encode(), 0, "pending", 0) for n in range(3)],
        ("duty@x", b"u", 9, "pending", 0)]
    assert {shape(t) for row in times for t in row} == {shape(times[0][0])}
    assert [(raws[i].state, raws[i].auto, raws[i].auto_reason, raws[i].error)
            for i in raw_ids] == [("done", None, None, None),
                                  ("discarded", "bounce", "退信", "重复的 Message-ID"),
                                  ("pending", None, None, None)]
    assert len(done_at) == 2 and {shape(t) for t in done_at} == {shape(times[0][0])}
