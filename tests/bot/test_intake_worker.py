"""The intake worker: one raw row becomes exactly one submission, whoever processes it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.app import Service
from bot.workers.intake import drain, process_raw
from storage import raw_intake
from storage.models import RawIntake, Submission

FIELDS = {"name": "", "email": "", "phone": "", "subject": "",
          "body": "交警队处理事故太慢了，等了三个小时。"}


async def add_raw(service: Service, key: str, payload: dict | None = None) -> int:
    async with service.runtime.sessions.begin() as s:
        raw_id = await raw_intake.add(s, channel="web", source_key=key,
                                      payload=payload or {"fields": FIELDS})
    assert raw_id is not None
    return raw_id


async def test_concurrent_processing_files_one_submission(service: Service):
    raw_id = await add_raw(service, "web:race")
    outcomes = await asyncio.gather(*(process_raw(service.runtime, raw_id) for _ in range(4)),
                                    drain(service.runtime))
    done = [o for o in outcomes[:-1] if o.state == "done" and o.tracking_no]
    assert len(done) == 1
    async with service.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Submission)) == 1


async def test_same_source_key_is_stored_once(service: Service):
    await add_raw(service, "web:twice")
    async with service.runtime.sessions.begin() as s:
        assert await raw_intake.add(s, channel="web", source_key="web:twice",
                                    payload={"fields": FIELDS}) is None
        assert await s.scalar(select(func.count()).select_from(RawIntake)) == 1


async def test_failing_input_is_retried_then_quarantined(service: Service):
    # A payload the pipeline cannot handle (fields is not a mapping): our error, not the sender's.
    raw_id = await add_raw(service, "web:broken", {"fields": ["not", "a", "dict"]})
    first = await process_raw(service.runtime, raw_id)
    assert first.state == "held"
    for _ in range(60):
        async with service.runtime.sessions() as s:
            row = await s.get(RawIntake, raw_id)
        if row.state == "quarantined":
            break
        await asyncio.sleep(0.2)
    assert row.state == "quarantined" and row.attempts == 3
    assert "Traceback" in (row.error or "")


async def test_a_batch_is_classified_as_each_letter_alone(settings, tmp_path):
    """drain() parses and classifies a batch ahead of its transactions; what it files must be
    what the one-at-a-time path files, and machine mail must stay unclassified."""
    from bot.runtime import Runtime
    from storage.db import upgrade_async

    await upgrade_async(settings.database.url)
    rt = Runtime.create(settings)
    letters = ["派出所办事窗口态度很差，排队两个小时没人管。", "网上信访回复太慢，一个月了没有消息。",
               "希望多进社区宣传防范电信诈骗的知识。"]
    auto = (b"From: Out Of Office <boss@example.com>\r\nTo: feedback@example.gov.cn\r\n"
            b"Subject: =?utf-8?b?6Ieq5Yqo5Zue5aSN?=\r\nAuto-Submitted: auto-replied\r\n"
            b"Message-ID: <ooo.1@example.com>\r\n\r\nI am away.\r\n")
    try:
        async with rt.sessions.begin() as s:
            for i, body in enumerate(letters):
                await raw_intake.add(s, channel="web", source_key=f"web:b{i}",
                                     payload={"fields": {**FIELDS, "body": body}})
            await raw_intake.add(s, channel="email", source_key="imap:ooo", raw=auto,
                                 message_id="<ooo.1@example.com>")
        assert await drain(rt) == 4
        clf = rt.classifier_holder.get()
        async with rt.sessions() as s:
            subs = list(await s.scalars(select(Submission).order_by(Submission.id)))
        assert [(x.category, x.measure) for x in subs[:3]] == [
            (c.category, c.measure) for c in (clf.classify("", b) for b in letters)]
        assert subs[3].auto and subs[3].category in (None, "unclassified")
    finally:
        await rt.close()


def _letter(n: int, sender: str) -> bytes:
    return (f"From: 市民 <{sender}>\r\nTo: feedback@example.gov.cn\r\n"
            f"Subject: =?utf-8?b?5Y+N5pig6Zeu6aKY?= {n}\r\nMessage-ID: <cap.{n}.{sender}>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"派出所办事窗口态度很差，排队两个小时没人管。第{n}封。\r\n").encode()


async def _acks_to(rt, address: str) -> int:  # type: ignore[no-untyped-def]
    from storage.models import Outbox

    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.recipient == address, Outbox.purpose == "ack")) or 0)


async def test_daily_cap_and_bounce_suppression_withhold_acks(settings):
    """Every letter is filed, but one address gets at most ``acks_per_sender_per_day``
    acknowledgements a day, and none while suppressed after a permanent bounce."""
    from datetime import timedelta

    from bot.runtime import Runtime
    from storage import outbox
    from storage.db import upgrade_async, utcnow

    await upgrade_async(settings.database.url)
    rt = Runtime.create(settings, with_classifier=False)
    cap = settings.intake.acks_per_sender_per_day
    try:
        async with rt.sessions.begin() as s:
            for n in range(cap + 1):
                await raw_intake.add(s, channel="email", source_key=f"cap:{n}",
                                     raw=_letter(n, "busy@example.com"))
        await drain(rt)
        assert await _acks_to(rt, "busy@example.com") == cap
        async with rt.sessions.begin() as s:
            await outbox.suppress(s, "gone@example.com", "permanent bounce",
                                  utcnow() + timedelta(days=7))
            await outbox.suppress(s, "back@example.com", "permanent bounce",
                                  utcnow() - timedelta(days=1))
            await raw_intake.add(s, channel="email", source_key="sup:1",
                                 raw=_letter(1, "gone@example.com"))
            await raw_intake.add(s, channel="email", source_key="sup:2",
                                 raw=_letter(2, "back@example.com"))
        await drain(rt)
        assert await _acks_to(rt, "gone@example.com") == 0
        assert await _acks_to(rt, "back@example.com") == 1  # the suppression has run out
        async with rt.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Submission)) == cap + 3
    finally:
        await rt.close()
