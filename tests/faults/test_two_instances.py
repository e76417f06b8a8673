"""Two ``serve`` processes on one PostgreSQL database and one mailbox: one polls (it holds the
mailbox lease), both deliver from the outbox (FOR UPDATE SKIP LOCKED); when the poller is
killed the other takes the mailbox over, and no letter is filed or acknowledged twice."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from pathlib import Path

from bot.sources.imap import STANDBY_CHECK
from testing.dovecot import ImapAccount
from testing.faults import Db, Serve, check, citizen_letters, folder_counts, seed_mailbox
from testing.postgres import Postgres
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail


async def _holder_pid(db: Db) -> int:
    lease = await db.lease()
    assert lease is not None, "nobody holds the mailbox lease"
    return int(lease[0].split(":")[-2])  # holder = host:pid:random


async def test_second_instance_takes_over_mailbox(postgres: Postgres, pg_template: str,
                                                  tmp_path: Path, imap_account: ImapAccount,
                                                  smtp_sink: SmtpSink):
    db_url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}", template=pg_template)
    letters = citizen_letters(120, secrets.token_hex(3))
    serves = [Serve(tmp_path / n, db_url=db_url, smtp_port=smtp_sink.port, imap=imap_account)
              for n in ("a", "b")]
    db = Db(db_url)
    try:
        for serve in serves:
            serve.start()
        await asyncio.gather(*(serve.ready() for serve in serves))
        await asyncio.to_thread(seed_mailbox, imap_account, letters[:80])
        while len(await db.submission_ids()) < 20:
            await asyncio.sleep(0.05)
        pid = await _holder_pid(db)
        [dead] = [s for s in serves if s.pid == pid]
        [alive] = [s for s in serves if s is not dead]
        dead.kill9()
        await asyncio.to_thread(seed_mailbox, imap_account, letters[80:])
        # The dead holder's lease would run out within 60 s; skip that wait.
        await db.expire_lease()
        t0 = time.monotonic()
        while (await db.lease() or ("",))[0].split(":")[-2:-1] != [str(alive.pid)]:
            assert time.monotonic() - t0 < STANDBY_CHECK + 5, "no takeover"
            await asyncio.sleep(0.1)
        takeover = time.monotonic() - t0
        await db.expire_claims_of_the_dead()  # outbox rows the dead one had claimed
        await db.wait_settled(len(letters), 60)
        await wait_mail(smtp_sink, len(letters), timeout=20)
        assert alive.stop() == 0
        report = check(letters, await db.submission_ids(), list(smtp_sink.messages),
                       await asyncio.to_thread(folder_counts, imap_account))
    finally:
        for serve in serves:
            serve.stop()
        await db.close()
    print(f"takeover {takeover:.1f} s after the lease ran out", *report.lines(), sep="\n")
    assert report.ok
    assert report.folders == {"INBOX": 0, "Processed": len(letters)}
