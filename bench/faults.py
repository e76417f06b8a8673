"""Fault benchmark (long version of tests/faults): SIGKILL ``serve`` while it ingests a mailbox.

For each backend (SQLite, and PostgreSQL when installed) a private Dovecot is seeded with
``--messages`` citizen letters (each from its own sender) while a real ``feedback-bot serve``
process is killed ``--kills`` times at random moments (0.2-2 s after each restart) and restarted;
acknowledgements go to an SMTP sink. Afterwards it prints losses (must be 0), letters filed twice
(must be 0), unacknowledged senders (must be 0), duplicate acknowledgements (a repeat is allowed
only as the same message, i.e. the same Message-ID, after a kill between the relay's "250" and
our commit) and the timing. On PostgreSQL it then runs two serve processes on one database and
mailbox, kills the lease holder and measures, on the real clock, how long the other takes to
take the mailbox over (the lease is 60 s). Exits 1 if any check fails.

The claims a killed process leaves on outbox rows last 5 minutes; between kills the script
expires them (the process is dead, so this is only the wait skipped), as it does the mailbox
lease in the kill loop. ``--quick``: 200 messages, 5 kills, no takeover wait.
Run: ``.venv/bin/python bench/faults.py --quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.db import upgrade  # noqa: E402
from testing.dovecot import (
    Dovecot,  # noqa: E402
    ImapAccount,  # noqa: E402
)
from testing.faults import Db, Serve, check, citizen_letters, folder_counts, kill_loop, seed_mailbox  # noqa: E402
from testing.postgres import Postgres  # noqa: E402
from testing.smtp import SmtpSink  # noqa: E402


def account(server: Dovecot) -> ImapAccount:
    user, password = f"u{secrets.token_hex(4)}", secrets.token_urlsafe(10)
    server.add_user(user, password)
    return ImapAccount(server.host, server.port, user, password)


async def kill_bench(name: str, db_url: str, server: Dovecot, tmp: Path, messages: int,
                     kills: int, rng: random.Random) -> bool:
    acct = account(server)
    letters = citizen_letters(messages, secrets.token_hex(3))
    with SmtpSink() as sink:
        serve = Serve(tmp / f"kill-{name}", db_url=db_url, smtp_port=sink.port, imap=acct)
        db = Db(db_url)
        try:
            run = await kill_loop(serve, acct, sink, db, letters, kills=kills, rng=rng,
                                  settle_timeout=max(120, messages / 5))
        finally:
            serve.stop()
            await db.close()
    r = run.report
    print(f"[{name}] {messages} letters, {run.kills} kills, {run.seconds:.1f} s "
          f"({messages / run.seconds:.1f} letters/s end to end, restarts included)")
    print(f"[{name}] losses {len(r.losses)}  stored twice {len(r.stored_twice)}  unacknowledged "
          f"{len(r.unacked)}  duplicate acks {r.duplicate_acks} (different Message-ID: "
          f"{len(r.mismatched_acks)})  mailbox {r.folders} (target: 0 lost, 0 stored twice)")
    for note in r.notes:
        print(f"[{name}] {note}")
    return r.ok and r.folders == {"INBOX": 0, "Processed": messages}


async def takeover_bench(db_url: str, server: Dovecot, tmp: Path, messages: int) -> bool:
    """Two instances; SIGKILL the lease holder and wait, on the real clock, for the other."""
    acct = account(server)
    letters = citizen_letters(messages, secrets.token_hex(3))
    with SmtpSink() as sink:
        serves = [Serve(tmp / f"two-{n}", db_url=db_url, smtp_port=sink.port, imap=acct)
                  for n in "ab"]
        db = Db(db_url)
        try:
            for s in serves:
                s.start()
            await asyncio.gather(*(s.ready() for s in serves))
            await asyncio.to_thread(seed_mailbox, acct, letters[: messages // 2])
            while len(await db.submission_ids()) < messages // 4:
                await asyncio.sleep(0.05)
            lease = await db.lease()
            assert lease is not None
            pid = int(lease[0].split(":")[-2])
            [dead] = [s for s in serves if s.pid == pid]
            [alive] = [s for s in serves if s is not dead]
            dead.kill9()
            t0 = time.monotonic()
            await asyncio.to_thread(seed_mailbox, acct, letters[messages // 2:])
            while not (await db.lease() or ("",))[0].startswith(_host_pid(alive)):
                await asyncio.sleep(0.2)
            takeover = time.monotonic() - t0
            await db.expire_claims_of_the_dead()
            await db.wait_settled(messages, 300)
            await asyncio.to_thread(sink.wait_for, messages, 60)
            alive.stop()
            report = check(letters, await db.submission_ids(), list(sink.messages),
                           await asyncio.to_thread(folder_counts, acct))
        finally:
            for s in serves:
                s.stop()
            await db.close()
    print(f"[two instances] takeover {takeover:.1f} s after SIGKILL of the lease holder "
          f"(requirement: within 60 s)")
    print("[two instances] " + "; ".join(report.lines()))
    return report.ok and takeover <= 60


def _host_pid(serve: Serve) -> str:
    return f"{os.uname().nodename}:{serve.pid}:"


async def main_async(args: argparse.Namespace, rng: random.Random) -> bool:
    ok = True
    with Dovecot() as server, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite+aiosqlite:///{tmp}/faults.db"
        upgrade(url)
        ok &= await kill_bench("sqlite", url, server, tmp, args.messages, args.kills, rng)
        if not Postgres.available():
            print("[postgres] skipped: PostgreSQL is not installed")
            return ok
        with Postgres() as pg:
            url = pg.create_database("faults")
            upgrade(url)
            ok &= await kill_bench("postgres", url, server, tmp, args.messages, args.kills, rng)
            if not args.quick:
                url = pg.create_database("takeover")
                upgrade(url)
                ok &= await takeover_bench(url, server, tmp, 200)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="200 messages, 5 kills, no takeover")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if args.quick:
        args.messages, args.kills = 200, 5
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"seed {seed}")
    ok = asyncio.run(main_async(args, random.Random(seed)))
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
