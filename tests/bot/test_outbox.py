"""Delivery through the outbox against a real SMTP server that goes down, refuses and recovers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.app import start
from bot.config import Settings
from storage.models import Outbox
from testing.smtp import SmtpSink
from tests.bot.helpers import submit, tracking_no
from tests.conftest import make_settings

LETTER = "小区门口的监控坏了半年了，晚上电动车被偷了好几辆，报警以后也没有下文。"


async def outbox_rows(service) -> list[Outbox]:  # type: ignore[no-untyped-def]
    async with service.runtime.sessions() as s:
        return list(await s.scalars(select(Outbox)))


async def wait_state(service, state: str, timeout: float = 10) -> list[Outbox]:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout * 10)):
        rows = await outbox_rows(service)
        if rows and all(r.state == state for r in rows):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"outbox never reached {state}: {[r.state for r in rows]}")


async def first_failure(service, timeout: float = 15) -> Outbox:  # type: ignore[no-untyped-def]
    """The acknowledgement once it is queued and an attempt to send it has failed."""
    for _ in range(int(timeout * 10)):
        rows = await outbox_rows(service)
        if rows and rows[0].attempts >= 1:
            [row] = rows
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"no failed attempt: {[(r.state, r.attempts) for r in rows]}")


async def test_smtp_down_then_up_delivers_exactly_once(settings: Settings, smtp_sink: SmtpSink):
    smtp_sink.stop()
    service = await start(settings)
    try:
        async with aiohttp.ClientSession() as http:
            status, html = await submit(http, service.base_url, body=LETTER,
                                        email="citizen@example.com")
        assert status == 200
        row = await first_failure(service)  # attempts fail while the server is down
        assert row.state == "pending" and row.last_error
        smtp_sink.start()
        await wait_state(service, "sent", timeout=15)
        await asyncio.sleep(1.0)
        assert len(smtp_sink.messages) == 1
        assert tracking_no(html) in str(smtp_sink.messages[0].message["Subject"])
    finally:
        await service.stop()


async def test_temporary_refusal_is_retried(service, smtp_sink: SmtpSink):  # type: ignore[no-untyped-def]
    smtp_sink.fail_next(2, code=451)
    async with aiohttp.ClientSession() as http:
        await submit(http, service.base_url, body=LETTER, email="retry@example.com")
    [row] = await wait_state(service, "sent", timeout=15)
    assert row.attempts == 2
    assert len(smtp_sink.messages) == 1


async def test_permanent_refusal_marks_failed_with_reason(service, smtp_sink: SmtpSink):  # type: ignore[no-untyped-def]
    smtp_sink.reject_rcpt("nobody@example.com", code=550)
    async with aiohttp.ClientSession() as http:
        await submit(http, service.base_url, body=LETTER, email="nobody@example.com")
    [row] = await wait_state(service, "failed")
    assert "550" in (row.last_error or "")
    assert smtp_sink.messages == []


async def test_without_smtp_host_mail_is_written_as_eml(db_url: str, tmp_path: Path):
    service = await start(make_settings(db_url, tmp_path))
    try:
        async with aiohttp.ClientSession() as http:
            _, html = await submit(http, service.base_url, body=LETTER, email="a@example.com")
        await wait_state(service, "sent")
        files = list((tmp_path / "var" / "outbox").glob("*.eml"))
        assert len(files) == 1
        assert tracking_no(html).encode() in files[0].read_bytes()
    finally:
        await service.stop()


async def test_a_burst_goes_out_over_several_connections_each_message_once(
        settings: Settings, smtp_sink: SmtpSink):
    """After a rush of letters the acknowledgements are sent side by side over
    ``smtp.connections`` connections (one connection waits for the relay after every
    command), every message once, every row marked sent."""
    from bot.runtime import Runtime
    from bot.workers.outbox import deliver_due
    from storage import outbox
    from storage.db import upgrade_async

    await upgrade_async(settings.database.url)
    rt = Runtime.create(settings, with_classifier=False)
    try:
        async with rt.sessions.begin() as s:
            await outbox.enqueue_many(s, [
                {"purpose": "ack", "recipient": f"c{n}@example.com", "sender": "fb@example.com",
                 "message_id": f"<burst.{n}@example.com>", "submission_id": None,
                 "message": f"Message-ID: <burst.{n}@example.com>\r\nSubject: {n}\r\n\r\nok\r\n"
                 .encode()} for n in range(12)])
        assert await deliver_due(rt) == 12
        got = smtp_sink.wait_for(12)
        assert sorted(m.rcpt_tos[0] for m in got) == sorted(f"c{n}@example.com" for n in range(12))
        assert len({m.peer for m in got}) == settings.smtp.connections == 4
        async with rt.sessions() as s:
            assert {r.state for r in await s.scalars(select(Outbox))} == {"sent"}
    finally:
        await rt.close()


async def test_while_citizens_post_only_alerts_go_and_the_acks_follow_the_rush(
        settings: Settings, smtp_sink: SmtpSink):
    """The outbox's writes made every POST of a rush wait (SQLite's one write slot): while the
    form is busy an urgent letter's alert still goes at once, and the acknowledgements wait
    until the form has been quiet for a moment."""
    from bot.runtime import Runtime
    from bot.workers.outbox import OutboxWorker
    from handlers import urgent
    from storage import outbox
    from storage.db import upgrade_async

    def message(n: int, purpose: str, to: str, priority: int = 0) -> dict[str, object]:
        return {"purpose": purpose, "recipient": to, "sender": "fb@example.com",
                "message_id": f"<rush.{n}@example.com>", "submission_id": None,
                "priority": priority,
                "message": f"Message-ID: <rush.{n}@example.com>\r\nSubject: {n}\r\n\r\nok\r\n"
                .encode()}

    await upgrade_async(settings.database.url)
    rt = Runtime.create(settings, with_classifier=False)
    try:
        async with rt.sessions.begin() as s:
            await outbox.enqueue_many(s, [message(0, "ack", "citizen@163.com"),
                                          message(1, urgent.ALERT, "duty@example.com",
                                                  urgent.PRIORITY)])
        worker = OutboxWorker(rt)
        rt.foreground.last = float("inf")  # a citizen is always posting
        await worker.round()
        [alert] = smtp_sink.wait_for(1)
        assert alert.rcpt_tos == ["duty@example.com"]
        assert (await worker.round()).delay > 0  # nothing else goes: it looks again later
        async with rt.sessions() as s:
            states = {r.recipient: r.state for r in await s.scalars(select(Outbox))}
        assert states == {"duty@example.com": "sent", "citizen@163.com": "pending"}

        rt.foreground.last = 0.0  # the rush is over
        await worker.round()
        got = smtp_sink.wait_for(2)
        assert got[1].rcpt_tos == ["citizen@163.com"]
    finally:
        await rt.close()
