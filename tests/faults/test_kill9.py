"""``serve`` killed with SIGKILL at random moments while it ingests a mailbox: nothing is lost,
nothing is filed twice, every citizen is acknowledged (a repeat only as the same message)."""

from __future__ import annotations

import random
import secrets
from pathlib import Path

from testing.dovecot import ImapAccount
from testing.faults import Db, Serve, citizen_letters, kill_loop
from testing.smtp import SmtpSink

LETTERS = 200
KILLS = 5


async def test_kill9_while_ingesting(db_url: str, tmp_path: Path, imap_account: ImapAccount,
                                     smtp_sink: SmtpSink, rng: random.Random):
    letters = citizen_letters(LETTERS, secrets.token_hex(3))
    serve = Serve(tmp_path / "a", db_url=db_url, smtp_port=smtp_sink.port, imap=imap_account)
    db = Db(db_url)
    try:
        run = await kill_loop(serve, imap_account, smtp_sink, db, letters, kills=KILLS, rng=rng)
        orphans = await serve.orphans_left()
    finally:
        serve.stop()
        await db.close()
    assert serve.orphaned  # the prepare processes of the killed services were seen
    assert orphans == set()  # and each exited with its service
    print(f"{run.kills} kills in {run.seconds:.1f} s (after {[round(d, 2) for d in run.kill_delays]})")
    for line in run.report.lines():
        print(line)
    assert run.kills == KILLS
    assert run.report.losses == []
    assert run.report.stored_twice == []
    assert run.report.unacked == []
    assert run.report.mismatched_acks == []  # a repeated ack is the same message, sent again
    assert run.report.folders == {"INBOX": 0, "Processed": LETTERS}  # moved, never deleted
