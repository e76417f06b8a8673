"""The relay as a free mailbox provider behaves: down, throttling (smtp.163.com's "554 DT:SPM",
"451 RP:…"), capped; and what staff see of it on /healthz. A real aiosmtpd server answers, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.app import start
from bot.config import Settings
from bot.runtime import Runtime
from bot.workers.outbox import deliver_due, hold
from storage import outbox
from storage.db import utcnow
from storage.models import Outbox, OutboxPause
from testing.smtp import SmtpSink
from tests.bot.console.support import add_user, login
from tests.bot.helpers import submit, wait_mail
from tests.bot.sources.mailtools import until
from tests.conftest import make_settings

LETTER = "菜市场门口的摊位占道经营，早上上学的孩子只能走到机动车道上，很危险。"
SPAM = ("DT:SPM 163 smtp14,EsCowAD3_sN1Z2Vn0Fh1Bw--.12345S2 1733380000, please see "
        "http://mail.163.com/help/help_spam_16.htm?ip=198.51.100.7&hostid=smtp14")
RATE = "RP:CEL 163 smtp9,DcmowAB3k0tL 1733380000 frequency limited, too many messages"


def _settings(db_url: str, tmp_path: Path, sink: SmtpSink, smtp: dict) -> Settings:
    """The test settings with these [smtp] keys (make_settings's ``smtp`` is the sink)."""
    settings = make_settings(db_url, tmp_path, sink)
    return settings.model_copy(update={"smtp": settings.smtp.model_copy(update=smtp)})


async def _health(service) -> dict:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http, http.get(f"{service.base_url}/healthz") as r:
        assert r.status == 200
        return await r.json()


async def _rows(rt: Runtime) -> list[Outbox]:
    async with rt.sessions() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def _pause(rt: Runtime) -> OutboxPause | None:
    async with rt.sessions() as s:
        return await outbox.pause_state(s)


async def _letters(service, n: int) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        for k in range(n):
            status, _ = await submit(http, service.base_url, body=f"{LETTER}（第{k}封）",
                                     email=f"c{k}@example.com")
            assert status == 200


@pytest.mark.parametrize("code,text", [(554, SPAM), (451, RATE)])
async def test_throttling_pauses_the_outbox_instead_of_spending_retries(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink, code: int, text: str):
    """The provider's spam verdict or rate limit pauses the whole outbox; no message is failed
    or charged an attempt; staff see the answer and the end of the pause on /healthz; then
    every message goes."""
    settings = _settings(db_url, tmp_path, smtp_sink, {"throttle_pause_seconds": 3, "connections": 1})
    smtp_sink.fail_next(1, code=code, text=text)
    service = await start(settings)
    rt = service.runtime
    try:
        await _letters(service, 3)
        paused = await until(lambda: _pause(rt), what="the outbox paused")
        assert paused.strikes == 1 and text[:20] in paused.reason
        health = await _health(service)
        assert health["status"] == "degraded"
        assert any("throttling" in r and text[:10] in r for r in health["reasons"])
        assert health["outbox_hold"]["provider_pause"] is True
        await add_user(service, "rev", "reviewer")  # staff see it on the outbox page too
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, service.base_url, "rev")
            async with http.get(f"{service.base_url}/console/outbox") as resp:
                page = await resp.text()
        assert 'id="hold"' in page and "邮件服务商限制发信" in page and text[:10] in page
        rows = await _rows(rt)
        assert all(r.state in ("pending", "sending", "sent") for r in rows)
        assert all(r.attempts == 0 for r in rows)  # the pause charged nobody an attempt
        got = await wait_mail(smtp_sink, 3, timeout=20)
        assert len(got) == 3
        assert min(r.sent_at for r in await _rows(rt) if r.sent_at) >= paused.until
        await until(lambda: _all_sent(rt), what="all marked sent")

        async def reset() -> bool:  # mail went out: the next pause starts short again
            return (await _pause(rt)).strikes == 0
        await until(reset, what="the pause's backoff reset")
        assert (await _health(service))["status"] == "ok"
    finally:
        await service.stop()


async def _all_sent(rt: Runtime) -> bool:
    return {r.state for r in await _rows(rt)} == {"sent"}


async def test_pauses_in_a_row_back_off_exponentially(db_url: str, tmp_path: Path,
                                                      smtp_sink: SmtpSink):
    settings = _settings(db_url, tmp_path, smtp_sink, {"throttle_pause_seconds": 0.4, "connections": 1})
    rt = Runtime.create(settings, with_classifier=False)
    try:
        async with rt.sessions.begin() as s:
            await outbox.enqueue(s, purpose="ack", recipient="a@example.com",
                                 sender="fb@example.com", message_id="t1@example.com",
                                 message=b"Subject: t\r\n\r\nok\r\n")
        smtp_sink.fail_next(2, code=451, text=RATE)
        for strikes in (1, 2):
            before = utcnow()
            assert await deliver_due(rt) == 1
            after = utcnow()
            paused = await _pause(rt)
            assert paused is not None and paused.strikes == strikes
            # The pause began between before and after, and lasts 0.4 s doubled per strike:
            # bounds that hold however slow the machine is.
            length = 0.4 * 2 ** (strikes - 1)
            shortest = (paused.until - after).total_seconds()
            longest = (paused.until - before).total_seconds()
            assert shortest <= length + 1e-3 and length - 1e-3 <= longest, (strikes, length)
            async with rt.sessions() as s:
                assert (await hold(rt, s)).limit == 0  # nothing is claimed during a pause
            assert await deliver_due(rt) == 0
            await asyncio.sleep(max(0.0, (paused.until - utcnow()).total_seconds()) + 0.05)
        assert await deliver_due(rt) == 1
        [row] = await _rows(rt)
        assert row.state == "sent" and row.attempts == 0
    finally:
        await rt.close()


async def test_smtp_outage_makes_healthz_degraded_and_retries_log_warnings(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="bot.workers.outbox")
    smtp_sink.stop()
    service = await start(make_settings(db_url, tmp_path, smtp_sink))
    try:
        await _letters(service, 1)

        async def degraded() -> dict | None:
            health = await _health(service)
            return health if health["status"] == "degraded" else None
        health = await until(degraded, what="healthz degraded", timeout=20)
        outbox_state = health["workers"]["outbox"]
        assert outbox_state["state"] == "error"
        assert "unreachable" in outbox_state["last_error"]
        assert str(smtp_sink.port) not in outbox_state["last_error"]  # /healthz is public
        assert any("unreachable" in r for r in health["reasons"])
        assert any("retry" in r.message and r.levelno == logging.WARNING for r in caplog.records)
        smtp_sink.start()
        await wait_mail(smtp_sink, 1, timeout=20)

        async def healthy() -> bool:
            return (await _health(service))["status"] == "ok"
        await until(healthy, what="healthz ok again", timeout=20)
    finally:
        await service.stop()


async def test_mail_failed_for_good_makes_healthz_degraded(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot.workers.outbox")  # a refused address: info
    smtp_sink.reject_rcpt("c0@example.com", code=550, text="5.1.1 <C0@example.com> User unknown")
    service = await start(make_settings(db_url, tmp_path, smtp_sink))
    try:
        await _letters(service, 1)

        async def failed() -> dict | None:
            health = await _health(service)
            return health if health["problems"]["mail_failed"] else None
        health = await until(failed, what="the failure on healthz", timeout=20)
        assert health["status"] == "degraded"
        assert any("failed for good" in r for r in health["reasons"])
        logged = [r.getMessage() for r in caplog.records if "failed permanently" in r.getMessage()]
        assert logged and "User unknown" in logged[0]
        assert "c0@example.com" not in " ".join(logged).lower()  # logs carry no addresses
    finally:
        await service.stop()


async def test_a_message_is_retried_for_a_day_then_fails(db_url: str, tmp_path: Path,
                                                         smtp_sink: SmtpSink):
    """Temporary refusals: a message queued an hour ago is retried; one queued 25 hours ago,
    still refused, fails for good (the old limit was eight attempts, about an hour)."""
    settings = _settings(db_url, tmp_path, smtp_sink, {"connections": 1})
    assert settings.smtp.retry_hours == 24
    rt = Runtime.create(settings, with_classifier=False)
    try:
        async with rt.sessions.begin() as s:
            for n in (1, 2):
                await outbox.enqueue(s, purpose="ack", recipient=f"r{n}@example.com",
                                     sender="fb@example.com", message_id=f"d{n}@example.com",
                                     message=b"Subject: t\r\n\r\nok\r\n")
            await s.execute(update(Outbox).where(Outbox.message_id == "d1@example.com")
                            .values(created_at=utcnow() - timedelta(hours=25), attempts=12))
            await s.execute(update(Outbox).where(Outbox.message_id == "d2@example.com")
                            .values(created_at=utcnow() - timedelta(hours=1), attempts=12))
        smtp_sink.fail_next(2, code=451, text="4.3.0 Try again later")
        assert await deliver_due(rt) == 2
        old, recent = await _rows(rt)
        assert old.state == "failed" and "451" in (old.last_error or "")
        assert recent.state == "pending" and recent.attempts == 13
    finally:
        await rt.close()


async def test_sending_caps_hold_across_restarts(db_url: str, tmp_path: Path,
                                                 smtp_sink: SmtpSink):
    settings = _settings(db_url, tmp_path, smtp_sink, {"max_per_minute": 2, "max_per_day": 3})
    rt = Runtime.create(settings, with_classifier=False)
    try:
        async with rt.sessions.begin() as s:
            await outbox.enqueue_many(s, [
                {"purpose": "ack", "recipient": f"q{n}@example.com", "sender": "fb@example.com",
                 "message_id": f"cap.{n}@example.com", "submission_id": None,
                 "message": f"Subject: {n}\r\n\r\nok\r\n".encode()} for n in range(5)])
        assert await deliver_due(rt) == 2
        assert await deliver_due(rt) == 0
        async with rt.sessions() as s:
            held = await hold(rt, s)
        first = min(r.sent_at for r in await _rows(rt) if r.sent_at)
        assert held.limit == 0 and held.paused is None and "每分钟" in (held.reason or "")
        assert abs((held.until - (first + timedelta(minutes=1))).total_seconds()) < 1
    finally:
        await rt.close()
    rt = Runtime.create(settings, with_classifier=False)  # a restart counts what was sent
    try:
        assert await deliver_due(rt) == 0
        async with rt.sessions.begin() as s:  # a minute later
            await s.execute(update(Outbox).where(Outbox.sent_at.is_not(None))
                            .values(sent_at=utcnow() - timedelta(seconds=61)))
        assert await deliver_due(rt) == 1  # the day's cap (3) leaves one
        assert await deliver_due(rt) == 0
        async with rt.sessions() as s:
            held = await hold(rt, s)
        assert "每日" in (held.reason or "")
        assert len(smtp_sink.wait_for(3)) == 3
    finally:
        await rt.close()
