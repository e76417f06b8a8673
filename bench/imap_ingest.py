"""Benchmark: how fast the IMAP poller takes in a full mailbox, against plain imapclient.

Starts a private Dovecot on loopback (``testing.dovecot.Dovecot``), MULTIAPPENDs N small citizen
letters (each from its own sender, so every one gets an acknowledgement), then measures

1. baseline: plain imapclient, ``UID FETCH BODY.PEEK[]`` in batches of 200;
2. ours: ``ImapPoller.cycle()`` (fetch, store raw rows + cursor, flag and MOVE) with the intake
   worker running beside it as in ``serve`` (parse, loop guard, classify, store,
   acknowledgement queued), on a fresh SQLite database, until every letter is filed;

and prints the rates, the ratio and the CPU seconds per letter of our process and of its prepare
processes (``time.process_time`` and ``/proc/<pid>/stat``; on a shared machine the CPU time
compares two trees better than the wall clock, which other load stretches). Asserts nothing. ``--n`` (default 10000), ``--quick`` (300).
Run: ``.venv/bin/python bench/imap_ingest.py --quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imapclient import IMAPClient  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.sources.imap import ImapPoller  # noqa: E402
from bot.workers.intake import run as intake_worker  # noqa: E402
from bot.workers.preparer import Preparer  # noqa: E402
from storage import outbox, raw_intake  # noqa: E402
from storage.db import upgrade  # noqa: E402
from testing.dovecot import Dovecot  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
BATCH = 200
TOPICS = ["小区路灯坏了三个月没人修", "派出所办事窗口态度很差", "网上信访回复太慢",
          "社区矫正人员管理不到位", "电信诈骗宣传希望多进社区", "物业纠纷调解没有结果"]


def letters(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = f"市民{i} <citizen{i}@example.com>"
        msg["To"] = "feedback@zfw.example.gov.cn"
        msg["Subject"] = f"反映问题 {i}"
        msg["Message-ID"] = f"<bench.{i}@example.com>"
        msg["Date"] = "Wed, 25 Nov 2026 10:00:00 +0800"
        msg.set_content(f"{TOPICS[i % len(TOPICS)]}，请有关部门尽快处理。编号{i}。")
        out.append(msg.as_bytes(policy=SMTP))
    return out


def seed(server: Dovecot, raws: list[bytes]) -> None:
    with IMAPClient(server.host, port=server.port, ssl=False, timeout=60) as c:
        c.login(USER, PASSWORD)
        for start in range(0, len(raws), BATCH):
            c.multiappend("INBOX", raws[start:start + BATCH])


def baseline(server: Dovecot) -> tuple[int, float]:
    t0 = time.perf_counter()
    with IMAPClient(server.host, port=server.port, ssl=False, timeout=60) as c:
        c.login(USER, PASSWORD)
        c.select_folder("INBOX")
        uids = c.search(["NOT", "DELETED"])
        got = 0
        for start in range(0, len(uids), BATCH):
            got += len(c.fetch(uids[start:start + BATCH], ["BODY.PEEK[]"]))
    return got, time.perf_counter() - t0


def children_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of the live processes ``pids``: the prepare processes."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


async def ours(settings: Settings) -> tuple[int, float, int, float, float, float]:
    """The poller and the intake worker running together, as ``serve`` runs them: the worker
    files what the poller has stored while the poller fetches the next batch."""
    rt = Runtime.create(settings)
    preparer = Preparer(rt.settings)
    await preparer.ready()  # the prepare processes hold their classifier, as in a running
    if not settings.intake.prepare_processes:  # service; without them this process does
        rt.classifier_holder.get()
    poller = ImapPoller(rt)
    try:
        assert await poller.hold_lease()
        await poller.connect()
        worker = asyncio.create_task(intake_worker(rt, 0.05, preparer))
        t0, cpu0, kids0 = (time.perf_counter(), time.process_time(),
                               children_cpu(preparer.pids))
        stored = await poller.cycle()
        t1 = time.perf_counter()
        while not await all_filed(rt):
            await asyncio.sleep(0.05)
        t2, cpu, kids = (time.perf_counter(), time.process_time() - cpu0,
                         children_cpu(preparer.pids) - kids0)
        rt.request_stop()
        await worker
        await poller.close()
        async with rt.sessions() as s:
            acks = (await outbox.counts_by_state(s)).get("pending", 0)
        return stored, t1 - t0, acks, t2 - t0, cpu, kids
    finally:
        await rt.close()


async def all_filed(rt: Runtime) -> bool:
    async with rt.sessions() as s:
        return not await raw_intake.due_ids(s, 1)


def settings_for(server: Dovecot, var: Path, processes: int) -> Settings:
    url = f"sqlite+aiosqlite:///{var}/bench.db"
    upgrade(url)
    return Settings(
        database={"url": url},
        web={"secret_key": "bench"},
        smtp={"from_addr": "feedback@zfw.example.gov.cn"},
        imap={"host": server.host, "port": server.port, "ssl": False, "user": USER,
              "password": PASSWORD, "processed_folder": "Processed"},
        intake={"attachments_dir": str(var / "attachments"), "acks_per_sender_per_day": 3,
                "prepare_processes": processes},
        classifier={"model_dir": str(var / "models")},
        var_dir=str(var),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="n=300")
    ap.add_argument("--processes", type=int, default=1,
                    help="[intake] prepare_processes (0: prepare in a thread)")
    args = ap.parse_args()
    n = 300 if args.quick else args.n
    raws = letters(n)
    with Dovecot() as server, tempfile.TemporaryDirectory() as tmp:
        server.add_user(USER, PASSWORD)
        t = time.perf_counter()
        seed(server, raws)
        print(f"seeded {n} messages by MULTIAPPEND in {time.perf_counter() - t:.1f} s")
        got, base_s = baseline(server)
        print(f"baseline  imapclient FETCH BODY.PEEK[]: {got} msgs in {base_s:.2f} s "
              f"= {got / base_s:,.0f} msg/s")
        stored, store_s, acks, total_s, cpu, kids = asyncio.run(
            ours(settings_for(server, Path(tmp), args.processes)))
        print(f"ours      poller fetch+store+move:      {stored} msgs in {store_s:.2f} s "
              f"= {stored / store_s:,.0f} msg/s")
        print(f"ours      fetched and filed, acks queued: {stored} msgs in {total_s:.2f} s "
              f"= {stored / total_s:,.0f} msg/s, {acks} acks queued")
        print(f"cpu       per letter: this process {cpu / stored * 1e6:,.0f} µs, "
              f"prepare processes {kids / stored * 1e6:,.0f} µs")
        base = got / base_s
        print(f"ratio     ours / baseline: poller {stored / store_s / base:.3f}, "
              f"end to end {stored / total_s / base:.3f} (target >= 0.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
