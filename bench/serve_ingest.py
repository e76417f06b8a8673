"""Benchmark: a real ``feedback-bot serve`` on a full mailbox: rate, memory, acknowledgement latency.

Starts a private Dovecot and an SMTP sink on loopback and one ``feedback-bot serve`` process
(SQLite, IDLE on) wired to them, then

1. MULTIAPPENDs ``--n`` citizen letters (each from its own sender) and waits until every one is
   filed and every acknowledgement has reached the sink: letters/s through the whole service;
2. reads the serve process's memory from /proc after that run (VmRSS now, VmHWM the peak);
3. appends ``--latency`` more letters one at a time, each after the previous one's
   acknowledgement arrived, and prints p50/p95 of append → acknowledgement at the SMTP server.

Prints figures, asserts nothing. ``--quick``: 100 letters, 5 latency samples.
Run: ``.venv/bin/python bench/serve_ingest.py --quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imapclient import IMAPClient  # noqa: E402

from storage.db import upgrade  # noqa: E402
from testing.dovecot import (
    Dovecot,  # noqa: E402
    ImapAccount,  # noqa: E402
)
from testing.faults import Db, Serve, children_of, citizen_letters, seed_mailbox  # noqa: E402
from testing.smtp import SmtpSink  # noqa: E402


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB (Linux /proc)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def pss_mb(pid: int) -> float:
    """The process's proportional set size in MB: each page shared with other processes (the
    interpreter, numpy's and the other libraries' code, pages a spawned child shares) counted
    as its share, so that the sum over a family counts every page once (Linux 4.14+)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "Pss":
            return int(value.split()[0]) / 1024
    return 0.0


def family_mb(pid: int) -> tuple[float, dict[str, float]]:
    """(RSS of the process, RSS of each child by its command line: the prepare processes and
    multiprocessing's resource tracker), in MB. RSS counts shared pages in each process, so
    the sum is an upper bound."""
    children = {}
    for child in sorted(children_of(pid)):
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        name = "resource tracker" if b"resource_tracker" in b" ".join(argv) else "prepare"
        children[f"{name} {child}"] = memory_mb(child)["VmRSS"]
    return memory_mb(pid)["VmRSS"], children


async def wait_acks(sink: SmtpSink, n: int, timeout: float) -> float:
    """Seconds until the sink holds ``n`` messages (polled: the sink's own wait blocks)."""
    t0 = time.monotonic()
    while len(sink.messages) < n:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{len(sink.messages)} of {n} acknowledgements after {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def latency(acct: ImapAccount, sink: SmtpSink, samples: int) -> list[float]:
    """Append one letter at a time; seconds from APPEND to its acknowledgement at the sink."""
    out = []
    with IMAPClient(acct.host, port=acct.port, ssl=False, timeout=60) as client:
        client.login(acct.user, acct.password)
        for letter in citizen_letters(samples, "lat" + secrets.token_hex(3)):
            have = len(sink.messages)
            t0 = time.monotonic()
            client.append("INBOX", letter.raw)
            await wait_acks(sink, have + 1, 60)
            out.append(time.monotonic() - t0)
    return out


async def run(n: int, samples: int, tmp: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp}/serve.db"
    upgrade(db_url)
    with Dovecot() as server, SmtpSink() as sink:
        acct = ImapAccount(server.host, server.port, "bench", "bench-password")
        server.add_user(acct.user, acct.password)
        serve = Serve(tmp / "serve", db_url=db_url, smtp_port=sink.port, imap=acct,
                      batch_size=200)
        serve.start()
        db = Db(db_url)
        try:
            await serve.ready()
            assert serve.pid is not None
            idle = memory_mb(serve.pid)
            letters = citizen_letters(n, secrets.token_hex(3))
            t0 = time.monotonic()
            seed_mailbox(acct, letters)
            await db.wait_settled(n, timeout=max(120, n / 5))
            filed = time.monotonic() - t0
            await wait_acks(sink, n, timeout=max(120, n / 5))
            acked = time.monotonic() - t0
            mem = memory_mb(serve.pid)
            own, children = family_mb(serve.pid)
            pss = pss_mb(serve.pid) + sum(pss_mb(c) for c in children_of(serve.pid))
            print(f"serve ingest: {n} letters filed in {filed:.1f} s = {n / filed:,.0f} letters/s;"
                  f" all {n} acknowledgements at the SMTP server after {acked:.1f} s")
            print(f"serve memory: RSS {idle['VmRSS']:.0f} MB when started, "
                  f"{mem['VmRSS']:.0f} MB after the run (peak {mem['VmHWM']:.0f} MB); "
                  f"with its children {own + sum(children.values()):.0f} MB (target < 300): "
                  + ", ".join(f"{k} {v:.0f} MB" for k, v in children.items())
                  + f"; proportional (PSS, shared pages counted once) {pss:.0f} MB")
            lat = sorted(await latency(acct, sink, samples))
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(f"ack latency, IDLE on, {samples} letters one at a time: "
                  f"p50 {statistics.median(lat):.2f} s, p95 {p95:.2f} s, max {lat[-1]:.2f} s "
                  f"(target p95 < 5 s)")
        finally:
            serve.stop()
            await db.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000,
                    help="letters in the ingest run (the IMAP benchmark's 10,000)")
    ap.add_argument("--latency", type=int, default=20, help="latency samples")
    ap.add_argument("--quick", action="store_true", help="100 letters, 5 latency samples")
    args = ap.parse_args()
    n, samples = (100, 5) if args.quick else (args.n, args.latency)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(n, samples, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
