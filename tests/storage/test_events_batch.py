"""A batch's history events (``events.record_many``: the intake records two a letter) hold what
one event recorded on its own holds, on SQLite and PostgreSQL: the detail as JSON, the time in
the form every other writer stores."""

from __future__ import annotations

import re

from sqlalchemy import select, text

from storage import events, submissions
from storage.db import utcnow
from storage.models import Event


async def test_events_of_a_batch_hold_what_a_single_event_holds(db):
    async with db.begin() as s:
        sub = await submissions.add(s, tracking_no="FK-E-0001", channel="web", subject="主题",
                                    text="正文", received_at=utcnow())
        await events.record(s, sub.id, "system", "single", {"channel": "web"})
        await events.record_many(s, [
            (sub.id, "system", "received", {"channel": "email", "category": "公安", "n": [1, 2]}),
            (sub.id, "staff:王", "acknowledged", None),
            (None, "system", "no-case", {"restricted": "writer"})])
    async with db() as s:
        rows = list(await s.scalars(select(Event).order_by(Event.id)))
        stored = (await s.execute(text(
            "SELECT action, CAST(at AS TEXT) FROM events ORDER BY id"))).all()
    single, *batch = rows
    assert [(e.submission_id, e.actor, e.action, e.detail) for e in batch] == [
        (sub.id, "system", "received", {"channel": "email", "category": "公安", "n": [1, 2]}),
        (sub.id, "staff:王", "acknowledged", None),
        (None, "system", "no-case", {"restricted": "writer"})]
    assert all(e.at.tzinfo is not None and abs((e.at - single.at).total_seconds()) < 60
               for e in batch)

    def shape(value: str) -> str:
        return re.sub(r"\d", "0", re.sub(r"\.\d+", "", value))

    assert {shape(at) for _action, at in stored} == {shape(stored[0][1])}
