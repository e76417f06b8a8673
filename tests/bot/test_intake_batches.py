"""The intake worker files many letters per transaction; what it files must be what filing them
one by one would file: letters that depend on each other in one batch, a failure in a batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.runtime import Runtime
from bot.sources.mailstore import store_mail
from bot.workers.intake import Pace, drain
from handlers import tracking
from storage import raw_intake
from storage.db import upgrade_async
from storage.models import Followup, Outbox, RawIntake, Submission

LETTER = "派出所办事窗口态度很差，排队两个小时没人管。"


def mail(sender: str, message_id: str, subject: str = "=?utf-8?b?5Y+N5pig6Zeu6aKY?=",
         attachment: bool = False) -> bytes:
    head = (f"From: 市民 <{sender}>\r\nTo: ntzfwjgdw@163.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n")
    if not attachment:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                + LETTER + "\r\n").encode()
    return (head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + LETTER + "\r\n"
            "--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; "
            'filename="photo.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            "iVBORw0KGgo=\r\n--b--\r\n").encode()


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Runtime]:
    await upgrade_async(settings.database.url)
    runtime = Runtime.create(settings, with_classifier=False)
    try:
        yield runtime
    finally:
        await runtime.close()


async def count(rt: Runtime, model: type) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def rows(rt: Runtime) -> dict[str, RawIntake]:
    async with rt.sessions() as s:
        return {r.source_key: r for r in await s.scalars(select(RawIntake))}


async def test_two_copies_of_one_mail_in_one_batch_are_filed_once(rt: Runtime):
    """A mail sent to two of our addresses arrives twice; the copies land in the same batch."""
    async with rt.sessions.begin() as s:
        for key in ("imap:1", "imap:2"):
            await store_mail(s, source_key=key, raw=mail("twice@163.com", "same.1@163.com"))
    assert await drain(rt) == 2
    assert await count(rt, Submission) == 1
    by_key = await rows(rt)
    assert by_key["imap:1"].state == "done"
    assert by_key["imap:2"].state == "discarded"
    assert by_key["imap:2"].submission_id == by_key["imap:1"].submission_id
    assert await count(rt, Outbox) == 1  # one acknowledgement, not two


async def test_a_reply_filed_in_the_same_batch_as_its_letter_is_a_followup(rt: Runtime):
    """The web form gives its number at once; a mail quoting it may be stored before the
    worker files the letter, and both then come in one batch."""
    tn = tracking.new_tracking_no("FK")
    fields = {"name": "", "email": "same@163.com", "phone": "", "subject": "",
              "body": LETTER}
    async with rt.sessions.begin() as s:
        await raw_intake.add(s, channel="web", source_key="web:first", tracking_no=tn,
                             payload={"fields": fields})
        await store_mail(s, source_key="imap:reply",
                         raw=mail("same@163.com", "reply.1@163.com", f"补充 {tn}"))
        await store_mail(s, source_key="imap:other",
                         raw=mail("other@qq.com", "other.1@qq.com", f"关于 {tn}"))
    await drain(rt)
    async with rt.sessions() as s:
        first = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
        followups = list(await s.scalars(select(Followup)))
        linked = list(await s.scalars(select(Submission).where(Submission.related_id.is_not(None))))
    assert first is not None
    # the same sender adds to the case; a stranger quoting the number gets a case of their own,
    # linked to it
    assert [f.submission_id for f in followups] == [first.id]
    assert [x.related_id for x in linked] == [first.id]
    assert await count(rt, Submission) == 2


async def test_one_letter_that_fails_holds_up_nobody_else(rt: Runtime, tmp_path: Path):
    """The attachment store is broken (a file where its folder should be): the letter with an
    attachment cannot be filed and waits for a retry with its error; the others in its batch
    are filed and acknowledged."""
    store = Path(rt.settings.intake.attachments_dir)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("not a folder")
    async with rt.sessions.begin() as s:
        for n in range(5):
            await store_mail(s, source_key=f"imap:{n}",
                             raw=mail(f"c{n}@163.com", f"m.{n}@163.com",
                                      attachment=n == 2))
    assert await drain(rt) == 5
    by_key = await rows(rt)
    assert by_key["imap:2"].state == "held"
    assert "Traceback" in (by_key["imap:2"].error or "")
    assert all(by_key[f"imap:{n}"].state == "done" for n in (0, 1, 3, 4))
    assert await count(rt, Submission) == 4
    assert await count(rt, Outbox) == 4


async def test_machine_mail_and_letters_are_filed_in_one_batch(settings: Settings, caplog):
    """An auto-reply is stored unclassified next to classified letters. The rows of one batch
    must have the same columns, or the whole batch falls back to filing row by row."""
    await upgrade_async(settings.database.url)
    runtime = Runtime.create(settings)  # with the classifier: the letters get categories
    try:
        auto = mail("robot@163.com", "auto.1@163.com").replace(
            b"MIME-Version", b"Auto-Submitted: auto-replied\r\nMIME-Version")
        async with runtime.sessions.begin() as s:
            await store_mail(s, source_key="imap:1", raw=mail("a@163.com", "a.1@163.com"))
            await store_mail(s, source_key="imap:2", raw=auto)
            await store_mail(s, source_key="imap:3", raw=mail("b@qq.com", "b.1@qq.com"))
        assert await drain(runtime) == 3
        assert "one by one" not in caplog.text
        async with runtime.sessions() as s:
            subs = {x.from_addr: x for x in await s.scalars(select(Submission))}
        assert subs["robot@163.com"].category == "unclassified"
        assert subs["robot@163.com"].confidence is None
        assert subs["a@163.com"].category not in ("unclassified", None)
        assert subs["a@163.com"].confidence is not None
        assert await count(runtime, Outbox) == 2  # the robot gets no acknowledgement
    finally:
        await runtime.close()


async def _transactions(rt: Runtime) -> list[int]:
    """How many rows each filing transaction claimed, in order: the claim stamps every row of
    one transaction with the same ``processed_at``."""
    async with rt.sessions() as s:
        stamps = list(await s.scalars(select(RawIntake.processed_at).order_by(RawIntake.id)))
    return [sum(1 for x in stamps if x == t) for t in dict.fromkeys(stamps)]


async def _store_letters(rt: Runtime, n: int) -> None:
    async with rt.sessions.begin() as s:
        for k in range(n):
            await store_mail(s, source_key=f"imap:{k}",
                             raw=mail(f"c{k}@163.com", f"rush.{k}@163.com"))


async def test_while_citizens_post_the_filing_takes_short_transactions(rt: Runtime):
    """A POST waits for the filing transaction that holds SQLite's write slot: while the form
    is busy, filing goes in short transactions (each as many letters as fit in the pace's
    time budget; here one) and still files every letter; when it is quiet, in one."""
    await _store_letters(rt, 12)
    rt.foreground.last = float("inf")  # a citizen is always posting
    pace = Pace(budget=0.0, share=1.0, first=4)  # then one letter a transaction, no rest
    assert await drain(rt, pace=pace) == 12
    assert await count(rt, Submission) == 12 and await count(rt, Outbox) == 12
    assert await _transactions(rt) == [4] + [1] * 8  # 4 before the first one was timed
    assert pace.per_letter is not None

    async with rt.sessions.begin() as s:
        for k in range(12, 20):
            await store_mail(s, source_key=f"imap:{k}",
                             raw=mail(f"c{k}@163.com", f"quiet.{k}@163.com"))
    rt.foreground.last = 0.0  # nobody has posted for a long time
    assert await drain(rt, pace=pace) == 8
    assert (await _transactions(rt))[-1] == 8


async def _saturate(stop: asyncio.Event) -> None:
    """Keep the event loop saturated, as fifty citizens' requests do: every pass over the
    loop's ready callbacks holds it for 4 ms."""
    while not stop.is_set():
        time.sleep(0.004)  # a callback's CPU, blocking the loop
        await asyncio.sleep(0)


async def _filing_stamps(rt: Runtime) -> list[float]:
    """When each filing transaction claimed its rows (seconds, in order)."""
    async with rt.sessions() as s:
        stamps = list(await s.scalars(select(RawIntake.processed_at).order_by(RawIntake.id)))
    return [t.timestamp() for t in dict.fromkeys(stamps) if t is not None]


async def test_while_the_pages_saturate_the_loop_filing_waits_for_room(rt: Runtime) -> None:
    """A one-letter filing transaction holds the event loop for milliseconds; while requests
    keep the loop saturated, filing waits for room, at the least ``floor`` seconds apart,
    instead of taking its share (here all the time) and stalling the pages ten times a
    second. Every letter is filed all the same."""
    await _store_letters(rt, 3)
    rt.foreground.last = float("inf")  # a citizen is always posting
    pace = Pace(budget=0.0, share=1.0, floor=0.5)  # one letter a transaction, no rest
    stop = asyncio.Event()
    load = asyncio.create_task(_saturate(stop))
    try:
        assert await drain(rt, pace=pace) == 3
    finally:
        stop.set()
        await load
    assert await count(rt, Submission) == 3
    stamps = await _filing_stamps(rt)
    assert len(stamps) == 3
    assert all(b - a >= pace.floor for a, b in zip(stamps, stamps[1:], strict=False))


def test_the_pace_files_when_the_loop_has_room_or_at_its_floor() -> None:
    pace = Pace(saturated=0.002, floor=5.0)
    assert pace.may_file([0.0001, 0.0005], now=100.0)  # nothing first: the loop has room
    assert pace.may_file([0.010, 0.020], now=100.0)  # saturated, but nothing filed yet
    pace.record(1, 0.008)
    now = pace.last
    assert not pace.may_file([0.010, 0.020], now=now + 1)  # saturated: wait
    assert not pace.may_file([0.0001, 0.004], now=now + 1)  # one long pass: still busy
    assert pace.may_file([0.0001, 0.0005], now=now + 1)  # room again
    assert pace.may_file([0.010, 0.020], now=now + 5)  # the floor: one now and then


def test_the_pace_rests_in_proportion_and_sizes_by_the_time_a_letter_takes():
    pace = Pace(budget=0.02, share=0.25, first=4)
    assert pace.size(busy=False, left=100) == 100
    assert pace.size(busy=True, left=100) == pace.first
    pace.record(10, 0.05)  # 5 ms a letter
    assert pace.size(busy=True, left=100) == 4
    assert pace.size(busy=True, left=2) == 2
    pace.record(1, 1.0)  # a slow moment: never less than one letter
    assert pace.size(busy=True, left=100) == 1
    assert pace.rest(0.01) == pytest.approx(0.03)  # filing takes a quarter of the time


async def test_letters_of_one_writer_in_one_batch_are_keyed_and_linked(rt: Runtime):
    """Two letters of one citizen (the address written two ways) and one of another citizen,
    filed in one transaction: each letter is stored with its writer's keys, and the second
    letter of the first writer is linked to the first as the same writer's."""
    from storage import repeats

    async with rt.sessions.begin() as s:
        for n, sender in enumerate(["Zhou.Lixin@163.com", "sun@qq.com", "zhou.lixin@163.COM"]):
            await store_mail(s, source_key=f"imap:{n}", raw=mail(sender, f"k.{n}@x"))
    assert await drain(rt) == 3
    async with rt.sessions() as s:
        subs = list(await s.scalars(select(Submission).order_by(Submission.id)))
        assert [sub.sender_addr_key for sub in subs] == [
            "zhou.lixin@163.com", "sun@qq.com", "zhou.lixin@163.com"]
        first, _other, again = subs
        kinds = {(link.id, link.kind) for link in await repeats.links_of(s, again.id)}
    assert (first.id, repeats.SENDER) in kinds
