"""Outages of what the service depends on, with a real ``serve`` process: the SMTP relay down
for a while, Dovecot restarted mid-batch, the SQLite database locked by another writer."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from storage.models import Outbox, RawIntake, Submission
from testing.dovecot import Dovecot, ImapAccount
from testing.faults import Db, Serve, check, citizen_letters, folder_counts, seed_mailbox
from testing.smtp import SmtpSink
from tests.bot.helpers import form_token, submit, tracking_no, wait_mail


async def test_smtp_down_then_up_delivers_every_ack_once(tmp_path: Path, imap_account: ImapAccount,
                                                         smtp_sink: SmtpSink):
    db_url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
    letters = citizen_letters(20, secrets.token_hex(3))
    serve = Serve(tmp_path / "a", db_url=db_url, smtp_port=smtp_sink.port, imap=imap_account)
    db = Db(db_url)
    try:
        smtp_sink.stop()
        await asyncio.to_thread(seed_mailbox, imap_account, letters)
        serve.start()
        await serve.ready()
        # Every letter is filed although no acknowledgement can go out; the acks wait, retried.
        deadline = time.monotonic() + 30
        while (await db.outbox_states())["pending"] < len(letters) or await _attempts(db) == 0:
            assert time.monotonic() < deadline, await db.outbox_states()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # down for a while: several failed attempts
        assert smtp_sink.messages == []
        smtp_sink.start()
        await wait_mail(smtp_sink, len(letters), timeout=30)
        await db.wait_settled(len(letters), 10)
        assert serve.stop() == 0
        report = check(letters, await db.submission_ids(), list(smtp_sink.messages),
                       await asyncio.to_thread(folder_counts, imap_account))
    finally:
        serve.stop()
        await db.close()
    print(*report.lines(), sep="\n")
    assert report.ok and report.duplicate_acks == 0
    assert len(smtp_sink.messages) == len(letters)


async def _attempts(db: Db) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.max(Outbox.attempts))) or 0)


async def test_dovecot_restarted_mid_batch(tmp_path: Path, own_dovecot: Dovecot,
                                           own_account: ImapAccount, smtp_sink: SmtpSink):
    # SQLite only: the reconnect is the poller's, the same on both backends, and the folder
    # must stay under two minutes (the kill test covers the poller on PostgreSQL).
    db_url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
    letters = citizen_letters(150, secrets.token_hex(3))
    await asyncio.to_thread(seed_mailbox, own_account, letters)
    serve = Serve(tmp_path / "a", db_url=db_url, smtp_port=smtp_sink.port, imap=own_account,
                  batch_size=10)
    db = Db(db_url)
    try:
        serve.start()
        await serve.ready()
        deadline = time.monotonic() + 30
        while not await _raw_count(db):
            assert time.monotonic() < deadline, serve.log_tail()
            await asyncio.sleep(0.02)
        before = await _raw_count(db)
        await asyncio.to_thread(own_dovecot.restart)
        await db.wait_settled(len(letters), 60)
        await wait_mail(smtp_sink, len(letters), timeout=30)
        assert serve.stop() == 0
        report = check(letters, await db.submission_ids(), list(smtp_sink.messages),
                       await asyncio.to_thread(folder_counts, own_account))
    finally:
        serve.stop()
        await db.close()
    print(f"{before} of {len(letters)} stored when Dovecot restarted", *report.lines(), sep="\n")
    assert before < len(letters), "the restart came too late to interrupt the batch"
    assert report.ok
    assert report.folders == {"INBOX": 0, "Processed": len(letters)}
    assert "(retrying)" in serve.log.read_text()  # the lost connection was logged, then recovered


async def _raw_count(db: Db) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(RawIntake)) or 0)


def _hold_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_locked_database_answers_503_and_keeps_mail(tmp_path: Path,
                                                         imap_account: ImapAccount,
                                                         smtp_sink: SmtpSink):
    """Longer than the 10 s busy timeout: the form says 503 + Retry-After in Chinese, the IMAP
    poller retries; once the lock is gone the same form is accepted and nothing is doubled."""
    db_file = tmp_path / "feedback.db"
    db_url = f"sqlite+aiosqlite:///{db_file}"
    serve = Serve(tmp_path / "a", db_url=db_url, smtp_port=smtp_sink.port, imap=imap_account)
    db = Db(db_url)
    [mail] = citizen_letters(1, secrets.token_hex(3))
    fields = {"name": "孙先生", "email": "sun@example.com", "subject": "扫黑除恶",
              "body": "我们村的砂石场有人强买强卖，希望严查。"}
    try:
        serve.start()
        await serve.ready()
        async with aiohttp.ClientSession() as http:
            token = await form_token(http, serve.base_url)
            locked = threading.Event()
            holder = threading.Thread(target=_hold_lock, args=(db_file, 13, locked))
            holder.start()
            await asyncio.to_thread(locked.wait, 5)
            await asyncio.to_thread(seed_mailbox, imap_account, [mail])
            async with http.post(f"{serve.base_url}/feedback",
                                 data={"token": token, **fields}) as resp:
                status, retry_after, page = resp.status, resp.headers.get("Retry-After"), \
                    await resp.text()
            await asyncio.to_thread(holder.join)
            assert await _raw_count(db) == 0  # nothing half-written
            status2, html = await submit(http, serve.base_url, token=token, **fields)
        await db.wait_settled(2, 30)
        await wait_mail(smtp_sink, 2, timeout=20)
        assert serve.stop() == 0
        async with db.sessions() as s:
            web_rows = await s.scalar(select(func.count()).select_from(Submission)
                                      .where(Submission.channel == "web"))
        ids = await db.submission_ids()
    finally:
        serve.stop()
        await db.close()
    assert status == 503 and retry_after and int(retry_after) > 0
    assert "稍" in page and "再试" in page  # a Chinese page asking to try again shortly
    assert status2 == 200 and tracking_no(html)
    assert web_rows == 1
    assert [m for m in ids if m] == [mail.message_id]  # the mail came in once the lock went
