"""Fault harness: real ``feedback-bot serve`` processes that are killed, and what they left behind.

Shared by the short fault tests (``tests/faults/``) and the long benchmark (``bench/faults.py``),
so it imports no pytest. It writes a TOML config for a serve process wired to a loopback Dovecot
mailbox, an SMTP sink and a database; starts (``testing/serve.py``), SIGKILLs and restarts that
process; seeds the mailbox with citizen letters (each with its own Message-ID and sender, since
acknowledgements are capped per sender per day); and reads back, from the database, the sink and
the mailbox, how many letters were lost, stored twice, or acknowledged twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from sqlalchemy import func, select, update

from storage.db import make_engine, rowcount, sessionmaker, utcnow
from storage.models import Lease, Outbox, RawIntake, Submission
from testing.loopback import free_port
from testing.serve import ServeProcess

SECRET = "fault-test-secret"
FROM_ADDR = "xinfang@zfw.example.gov.cn"
PROCESSED = "Processed"
APPEND_BATCH = 200

# Obvious citizen complaints about the report's topics, so the classifier never calls one spam
# (spam gets no acknowledgement, and every letter here must be acknowledged).
COMPLAINTS = [
    "我们村的砂石场有人强买强卖，村民举报后还被威胁，希望扫黑除恶办严查背后的保护伞。",
    "派出所办理户口迁移时窗口工作人员态度生硬，让我来回跑了四趟，希望整改作风问题。",
    "我的信访件已经提交两个月，一直没有答复，也查不到办理进度，请尽快给个说法。",
    "小区附近有人开设赌场，晚上进出人员复杂，多次报警没有效果，请依法打击。",
    "法院判决生效一年多了仍未执行到位，执行法官电话总是打不通，恳请督促执行。",
    "社区矫正人员经常在外面喝酒闹事，社区也不管，居民很担心安全，请加强监管。",
    "老人接到冒充公检法的诈骗电话被骗走积蓄，希望多到社区开展反诈宣传。",
    "邻里纠纷找调解委员会三次都没有结果，调解员推来推去，希望基层调解真正起作用。",
]


# -- letters and the mailbox ---------------------------------------------------------------------

@dataclass(frozen=True)
class Letter:
    message_id: str  # without <>
    sender: str
    raw: bytes


def citizen_letters(n: int, tag: str, start: int = 0) -> list[Letter]:
    """``n`` distinct complaints, each from its own address with its own Message-ID."""
    out = []
    for i in range(start, start + n):
        sender = f"shimin.{tag}.{i}@example.com"
        mid = f"fault.{tag}.{i}@example.com"
        msg = EmailMessage()
        msg["From"] = f"市民{i} <{sender}>"
        msg["To"] = FROM_ADDR
        msg["Subject"] = f"反映问题（第{i}号）"
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = f"<{mid}>"
        msg.set_content(f"{COMPLAINTS[i % len(COMPLAINTS)]}\n\n此致\n市民{i}\n")
        out.append(Letter(mid, sender, msg.as_bytes(policy=SMTP)))
    return out


def _imap(acct: Any) -> IMAPClient:
    client = IMAPClient(acct.host, port=acct.port, ssl=False, timeout=60)
    client.login(acct.user, acct.password)
    return client


def seed_mailbox(acct: Any, letters: Sequence[Letter]) -> None:
    """MULTIAPPEND the letters to INBOX in batches (single APPENDs slow down as INBOX grows)."""
    with _imap(acct) as client:
        for start in range(0, len(letters), APPEND_BATCH):
            client.multiappend("INBOX", [x.raw for x in letters[start:start + APPEND_BATCH]])


def folder_counts(acct: Any) -> dict[str, int]:
    """Messages per folder (INBOX and the processed folder), deleted-flagged ones included."""
    counts: dict[str, int] = {}
    with _imap(acct) as client:
        for folder in ("INBOX", PROCESSED):
            if client.folder_exists(folder):
                counts[folder] = int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])
            else:
                counts[folder] = 0
    return counts


# -- the serve process ---------------------------------------------------------------------------

def write_config(path: Path, *, db_url: str, web_port: int, smtp_port: int,
                 imap: Any | None = None, poll_seconds: float = 0.5,
                 batch_size: int = 50) -> Path:
    """A TOML config for one serve process; its var/ lives next to the file."""
    var = path.parent / "var"
    imap_section = ""
    if imap is not None:
        imap_section = f"""
[imap]
host = "{imap.host}"
port = {imap.port}
ssl = false
starttls = false
user = "{imap.user}"
password = "{imap.password}"
processed_folder = "{PROCESSED}"
poll_seconds = {poll_seconds}
idle = true
batch_size = {batch_size}
"""
    path.write_text(f"""
var_dir = "{var}"
[database]
url = "{db_url}"
[web]
host = "127.0.0.1"
port = {web_port}
public_url = "http://127.0.0.1:{web_port}"
secret_key = "{SECRET}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
from_addr = "{FROM_ADDR}"
retry_base_seconds = 0.2
[intake]
attachments_dir = "{var}/attachments"
retry_base_seconds = 0.2
[classifier]
model_dir = "{var}/models"
[maildir]
path = "{var}/maildir"
{imap_section}""", encoding="utf-8")
    return path


def children_of(pid: int) -> set[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


class Serve(ServeProcess):
    """One ``feedback-bot serve`` process that can be killed and started again."""

    def __init__(self, workdir: Path, *, db_url: str, smtp_port: int, imap: Any | None = None,
                 batch_size: int = 50) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = write_config(workdir / "fb.toml", db_url=db_url, web_port=port,
                              smtp_port=smtp_port, imap=imap, batch_size=batch_size)
        super().__init__(workdir, config, port)
        self.kills = 0
        self.orphaned: set[int] = set()  # children of killed processes (the prepare pool)

    def kill9(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no cleanup, no lease release."""
        assert self.proc is not None
        self.orphaned |= children_of(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    async def orphans_left(self, timeout: float = 15) -> set[int]:
        """The children of killed processes still alive after ``timeout`` (should be none:
        they exit when their parent is gone)."""
        deadline = time.monotonic() + timeout
        while True:
            alive = {pid for pid in self.orphaned if Path(f"/proc/{pid}").exists()}
            if not alive or time.monotonic() > deadline:
                return alive
            await asyncio.sleep(0.2)


# -- reading back --------------------------------------------------------------------------------

class Db:
    """Direct reads of the service's database, for checks only (plus the clock skips below)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def submission_ids(self) -> list[str | None]:
        async with self.sessions() as s:
            return list(await s.scalars(select(Submission.message_id)))

    async def open_work(self) -> dict[str, int]:
        """Raw rows not yet done and outbox rows not yet sent, by state."""
        async with self.sessions() as s:
            raw = await s.execute(select(RawIntake.state, func.count())
                                  .where(RawIntake.state.in_(("pending", "held")))
                                  .group_by(RawIntake.state))
            out = await s.execute(select(Outbox.state, func.count())
                                  .where(Outbox.state.in_(("pending", "sending")))
                                  .group_by(Outbox.state))
            return {f"raw:{k}": v for k, v in raw.all()} | {f"outbox:{k}": v for k, v in out.all()}

    async def outbox_states(self) -> Counter[str]:
        async with self.sessions() as s:
            rows = await s.execute(select(Outbox.state, func.count()).group_by(Outbox.state))
            return Counter(dict(rows.all()))

    async def expire_claims_of_the_dead(self) -> int:
        """Fast-forward the clock for outbox rows claimed by a killed process.

        A claim lasts ``bot.workers.outbox.LEASE`` (5 minutes): only after that may another
        process resend a row whose sender died mid-delivery. Call this only while no serve
        process runs; it does what waiting out the claim would do, without the wait.
        """
        async with self.sessions.begin() as s:
            result = await s.execute(update(Outbox).where(Outbox.state == "sending")
                                     .values(claimed_until=utcnow()))
            return rowcount(result)

    async def ack_rows(self, recipients: Sequence[str]) -> list[tuple[str, str, int, str | None]]:
        """(recipient, state, attempts, last_error) of acknowledgements, to explain a miss."""
        async with self.sessions() as s:
            rows = await s.execute(select(Outbox.recipient, Outbox.state, Outbox.attempts,
                                          Outbox.last_error)
                                   .where(Outbox.recipient.in_(list(recipients))))
            return [(to, state, n, err) for to, state, n, err in rows.all()]

    async def lease(self, name: str = "imap:INBOX") -> tuple[str, datetime] | None:
        async with self.sessions() as s:
            row = (await s.execute(select(Lease.holder, Lease.expires_at)
                                   .where(Lease.name == name))).first()
            return (row[0], row[1]) if row else None

    async def expire_lease(self, name: str = "imap:INBOX") -> None:
        """Fast-forward the clock past a dead holder's mailbox lease (60 s TTL)."""
        async with self.sessions.begin() as s:
            await s.execute(update(Lease).where(Lease.name == name)
                            .values(expires_at=utcnow()))

    async def wait_settled(self, expected: int, timeout: float) -> None:
        """Until ``expected`` submissions exist and nothing is pending any more."""
        deadline = time.monotonic() + timeout
        while True:
            stored = len(await self.submission_ids())
            work = await self.open_work()
            if stored >= expected and not work:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled after {timeout} s: {stored} of {expected} "
                                     f"submissions, open work {work}")
            await asyncio.sleep(0.2)


@dataclass
class Report:
    """What a fault run left behind; ``ok`` means no loss and no duplicate submission."""

    letters: int
    losses: list[str] = field(default_factory=list)       # never stored
    stored_twice: list[str] = field(default_factory=list)  # more than one submission
    unacked: list[str] = field(default_factory=list)       # sender got no acknowledgement
    duplicate_acks: int = 0                               # extra copies at the sink
    mismatched_acks: list[str] = field(default_factory=list)  # copies with different Message-IDs
    folders: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.losses or self.stored_twice or self.unacked or self.mismatched_acks)

    def lines(self) -> list[str]:
        return [
            f"letters {self.letters}: losses {len(self.losses)}, stored twice "
            f"{len(self.stored_twice)}, unacknowledged {len(self.unacked)}, duplicate acks "
            f"{self.duplicate_acks} (with a different Message-ID: {len(self.mismatched_acks)})",
            f"mailbox: {self.folders}",
            *self.notes,
        ]


def check(letters: Sequence[Letter], stored_ids: Sequence[str | None], sink_messages: Sequence[Any],
          folders: dict[str, int]) -> Report:
    """Compare what was sent in with what was stored and acknowledged."""
    report = Report(len(letters), folders=folders)
    stored = Counter((m or "").strip("<>") for m in stored_ids)
    acks: dict[str, list[str]] = defaultdict(list)
    for mail in sink_messages:
        for rcpt in mail.rcpt_tos:
            acks[rcpt.lower()].append(str(mail.message["Message-ID"]))
    for letter in letters:
        n = stored[letter.message_id]
        if n == 0:
            report.losses.append(letter.message_id)
        elif n > 1:
            report.stored_twice.append(letter.message_id)
        got = acks.get(letter.sender.lower(), [])
        if not got:
            report.unacked.append(letter.sender)
        report.duplicate_acks += max(0, len(got) - 1)
        if len(set(got)) > 1:
            report.mismatched_acks.append(letter.sender)
    return report


# -- the kill loop -------------------------------------------------------------------------------

@dataclass
class KillRun:
    report: Report
    kills: int
    seconds: float
    kill_delays: list[float]


async def kill_loop(serve: Serve, acct: Any, sink: Any, db: Db, letters: Sequence[Letter], *,
                    kills: int, rng: Any, settle_timeout: float = 120) -> KillRun:
    """Ingest ``letters`` through ``serve`` while SIGKILLing it ``kills`` times.

    The letters arrive in ``kills + 1`` chunks, one appended right after each (re)start (the last
    one just before it), so every life of the process has mail to fetch, store, classify and acknowledge when it is killed
    0.2-2 s later. After each kill the dead process's claims are expired (see ``Db``) and it is
    started again; after the last start the run waits until every letter is stored, every
    acknowledgement sent, then stops the process cleanly and reads back what happened.
    """
    t0 = time.monotonic()
    chunks = [list(letters[i::kills + 1]) for i in range(kills + 1)]
    delays: list[float] = []
    for life, chunk in enumerate(chunks):
        if life == kills:
            # The last chunk goes in before the start: the first cycle takes it, and the run
            # does not hinge on the IDLE wake-up (a mail that lands between the poller's
            # SEARCH and its IDLE waits for the next poll; see bot.sources.imap.wait).
            await asyncio.to_thread(seed_mailbox, acct, chunk)
            serve.start()
            break
        serve.start()
        await serve.ready()
        await asyncio.to_thread(seed_mailbox, acct, chunk)
        delay = rng.uniform(0.2, 2.0)
        delays.append(delay)
        await asyncio.sleep(delay)
        serve.kill9()
        await db.expire_claims_of_the_dead()
        await db.expire_lease()
    await db.wait_settled(len(letters), settle_timeout)
    code = serve.stop()
    assert code == 0, f"serve exited with {code}:\n{serve.log_tail()}"
    folders = await asyncio.to_thread(folder_counts, acct)
    report = check(letters, await db.submission_ids(), list(sink.messages), folders)
    if report.unacked:
        report.notes.append(f"outbox rows of unacknowledged senders: "
                            f"{await db.ack_rows(report.unacked)}")
    return KillRun(report, serve.kills, time.monotonic() - t0, delays)
