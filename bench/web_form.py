"""Web form throughput: our POST /feedback against a bare aiohttp handler, same client, same run.

Both servers run as their own processes on loopback; this script is the load generator (an
aiohttp client with N concurrent connections, bounded in count and time). Each of our POSTs carries
a fresh signed form token, validation and a committed database write of the letter (the raw row
with its tracking number): the service's form writer commits the letters of all POSTs waiting at
that moment in one transaction, and each page with its tracking number comes back only after its
own letter's commit. The intake worker in the same process files the letters (classification,
acknowledgement into the outbox) in batches while the load runs, as in production. Prints
requests/s, p50/p99 latency, the CPU each side spent per request and the ratio to the bare handler,
then how long the worker took until every letter was filed and acknowledged. Asserts nothing.

The two servers are measured in alternating rounds (bare, ours, bare, ours, ...) and the median
ratio is the result: on a small machine one run's rate moves by a fifth with whatever else runs,
and a bare run next to each of ours cancels most of that.

    python bench/web_form.py [--quick] [--clients 50] [--requests 3000] [--rounds 5]

``--sustained SECONDS`` measures the citizen's real flow instead: each of the clients GETs the
form, takes the signed token from the page and POSTs the letter with it, again and again for
SECONDS, while the same service files and acknowledges what it receives (its intake and outbox
workers run, with no pause between rounds to catch up). The bare aiohttp app (a trivial page, a
POST answered 200) takes the same load for the same time right before it. Rounds (``--rounds``,
3 by default here) alternate bare and ours; the median ratio counts. After each window the script
waits for every letter whose tracking number a page showed to be filed and its acknowledgement
written (the lag), and exits non-zero if any is missing.

    python bench/web_form.py --sustained 10 [--quick (one round, at most 3 s)] [--clients 50]
                             [--rounds 3] [--stalls]

``--stalls`` runs the service under ``bench/loop_probe.py`` and prints, for each of our windows,
how late a 1 ms sleep on its event loop woke (a histogram: the stalls every request in that moment
waited through), the milliseconds per second the loop stood still, the longest stalls, and the
full garbage collections. The probe costs some CPU: compare figures with it only to others with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.web import tokens  # noqa: E402
from testing.loopback import free_port  # noqa: E402

SECRET = "bench-secret"
BARE = """
import sys
from aiohttp import web
PAGE = '<!doctype html><form method="post"><input type="hidden" name="token" value="t"></form>'
async def ok(request):
    await request.post()
    return web.Response(text="ok")
async def page(request):
    return web.Response(text=PAGE, content_type="text/html")
app = web.Application()
app.router.add_post("/feedback", ok)
app.router.add_get("/feedback", page)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
LETTER = ("我家小区门口的监控坏了三个月，晚上路灯也不亮，前几天邻居的电动车被偷了，"
          "报警以后派出所说调不到录像。希望有关部门尽快修好，智慧小区不能只是挂个牌子。") * 2


async def wait_up(url: str, timeout: float = 60) -> None:
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up")


async def load(url: str, clients: int, requests: int, with_token: bool,
               max_seconds: float) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.monotonic() + max_seconds
    secret = SECRET.encode()

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in counter:
            if time.monotonic() > deadline:
                return
            data = {"body": f"{LETTER} #{i}", "email": f"c{i}@example.com", "name": "测试"}
            if with_token:
                data["token"] = tokens.issue(secret)
            t0 = time.perf_counter()
            async with http.post(url, data=data) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, latencies, errors


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else 0.0


def start_ours(tmp: Path, port: int, probe: bool = False) -> subprocess.Popen[bytes]:
    config = tmp / "bench.toml"
    config.write_text(f"""
[database]
url = "sqlite+aiosqlite:///{tmp}/bench.db"
[web]
port = {port}
public_url = "http://127.0.0.1:{port}"
secret_key = "{SECRET}"
submits_per_hour = 100000000
[maildir]
path = "{tmp}/maildir"
[intake]
attachments_dir = "{tmp}/attachments"
acks_per_sender_per_day = 100
[classifier]
model_dir = "{tmp}/models"
[log]
level = "WARNING"
""")
    env = {**os.environ, "FEEDBACK_VAR_DIR": str(tmp / "var")}
    command = [str(Path(sys.executable).parent / "feedback-bot")]
    if probe:
        env["FEEDBACK_LOOP_PROBE"] = str(tmp / "probe.json")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
        command = [sys.executable, str(REPO / "bench" / "loop_probe.py")]
    return subprocess.Popen([*command, "serve", "--config", str(config)], cwd=tmp, env=env)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One load run against one server: rate, latencies, errors and CPU per request."""

    rate: float
    latencies: list[float]
    errors: int
    client_us: float  # this load generator's CPU per request
    server_us: float  # the server process's CPU per request


async def measured(url: str, pid: int, clients: int, n: int, with_token: bool,
                   max_seconds: float) -> Run:
    c0, s0 = time.process_time(), cpu_seconds(pid)
    rate, latencies, errors = await load(url, clients, n, with_token, max_seconds)
    done = max(len(latencies), 1)
    return Run(rate, latencies, errors, (time.process_time() - c0) / done * 1e6,
               (cpu_seconds(pid) - s0) / done * 1e6)


@contextlib.asynccontextmanager
async def servers(tmp: Path, probe: bool = False) -> AsyncIterator[tuple[Server, Server]]:
    """The bare handler and our ``serve`` (its workers running), both up and warmed;
    ``probe``: ours runs under bench/loop_probe.py."""
    bare_port, our_port = free_port(), free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)])
    ours = start_ours(tmp, our_port, probe)
    try:
        bare_s = Server(bare, f"http://127.0.0.1:{bare_port}/feedback")
        our_s = Server(ours, f"http://127.0.0.1:{our_port}/feedback",
                       tmp / "probe.json" if probe else None)
        await wait_up(bare_s.url)
        await wait_up(f"http://127.0.0.1:{our_port}/healthz")
        # warm-up: the classifier loads, the database file grows
        await load(our_s.url, 4, 20, True, 30)
        await wait_filed(tmp / "bench.db", 120)
        yield bare_s, our_s
    finally:
        for p in (bare, ours):
            p.terminate()
            p.wait(20)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    probe: Path | None = None  # where bench/loop_probe.py writes a window's figures

    def probe_start(self) -> None:
        if self.probe is not None:
            self.probe.unlink(missing_ok=True)
            self.proc.send_signal(signal.SIGUSR1)

    async def probe_read(self) -> dict[str, Any] | None:
        """The loop probe's figures since :meth:`probe_start` (None without a probe)."""
        if self.probe is None:
            return None
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not self.probe.exists():
            if time.monotonic() > deadline:
                raise SystemExit("the loop probe wrote nothing")
            await asyncio.sleep(0.05)
        return cast(dict[str, Any], json.loads(self.probe.read_text()))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating bare/ours runs; the median ratio is the result "
                         "(default 5, sustained 3)")
    ap.add_argument("--sustained", type=float, default=None, metavar="SECONDS",
                    help="GET the form and POST it continuously for SECONDS per run")
    ap.add_argument("--stalls", action="store_true",
                    help="with --sustained: measure our event loop's stalls (bench/loop_probe.py)")
    args = ap.parse_args()
    if args.sustained is not None:
        rounds = 1 if args.quick else args.rounds or 3
        seconds = min(args.sustained, 3.0) if args.quick else args.sustained
        with tempfile.TemporaryDirectory() as d:
            async with servers(Path(d), probe=args.stalls) as (bare, ours):
                numbers = itertools.count()
                runs = [await sustained_round(Path(d) / "bench.db", bare, ours, args.clients,
                                              seconds, numbers) for _ in range(rounds)]
        sys.exit(report_sustained(args.clients, seconds, runs))
    n = 200 if args.quick else args.requests
    rounds = 1 if args.quick else args.rounds or 5
    max_seconds = 20 if args.quick else 120
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pairs: list[tuple[Run, Run, float]] = []
        async with servers(tmp) as (bare, ours):
            for _ in range(rounds):
                # Each round starts with our service idle (the last round's letters filed),
                # and the bare handler runs right before it, so both see the same machine.
                b = await measured(bare.url, bare.proc.pid, args.clients, n, False, max_seconds)
                t0 = time.perf_counter()
                o = await measured(ours.url, ours.proc.pid, args.clients, n, True, max_seconds)
                filed_at, acks = await wait_filed(tmp / "bench.db", max_seconds * 5)
                pairs.append((b, o, filed_at - t0))
    report(args.clients, n, pairs, acks)


def report(clients: int, n: int, pairs: list[tuple[Run, Run, float]], acks: int) -> None:
    print(f"web form, {clients} concurrent clients, {n} requests per run, "
          f"{len(pairs)} alternating round(s) (SQLite)")
    print(f"{'':26}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'client µs':>10}{'server µs':>10}{'ratio':>7}")
    for i, (b, o, _) in enumerate(pairs, 1):
        for name, r in ((f"{i}: bare aiohttp handler", b), (f"{i}: POST /feedback", o)):
            ratio = f"{o.rate / b.rate:7.3f}" if r is o else ""
            print(f"{name:26}{r.rate:8.0f}{pct(r.latencies, 50):8.1f}{pct(r.latencies, 99):8.1f}"
                  f"{r.errors:7d}{r.client_us:10.0f}{r.server_us:10.0f}{ratio}")
    ratios = sorted(o.rate / b.rate for b, o, _ in pairs)
    p99 = sorted(pct(o.latencies, 99) for _, o, _ in pairs)
    print(f"ratio ours/bare: median {statistics.median(ratios):.3f} "
          f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target >= 0.4); "
          f"p99 median {statistics.median(p99):.1f} ms (target < 50 ms)")
    filed = statistics.median(f for _, _, f in pairs)
    print(f"filed: every letter classified and {acks} acknowledgements queued, a median "
          f"{filed:.1f} s after a run began = {n / filed:.0f} letters/s through the pipeline")


TOKEN = re.compile(r'name="token" value="([^"]+)"')
TRACKING = re.compile(r'id="tracking-number">([^<]+)<')


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (our prepare process does half the filing)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


@dataclass
class Flow:
    """One sustained window against one server: every GET's and POST's latency, the tracking
    numbers the pages showed, and the server's CPU per request."""

    seconds: float = 0.0
    gets: list[float] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)
    errors: int = 0
    tracking_nos: list[str] = field(default_factory=list)
    server_us: float = 0.0
    stalls: dict[str, Any] | None = None  # bench/loop_probe.py's figures for the window

    @property
    def rate(self) -> float:
        return (len(self.gets) + len(self.posts)) / self.seconds

    @property
    def latencies(self) -> list[float]:
        return self.gets + self.posts


async def flow(server: Server, clients: int, seconds: float, ours: bool,
               numbers: itertools.count[int]) -> Flow:
    """``clients`` citizens, each GETting the form and POSTing it with the page's token, one
    after the other, until ``seconds`` have passed (the pair under way is finished)."""
    result = Flow()
    deadline = time.monotonic() + seconds

    async def client(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with http.get(server.url) as resp:
                page, status = await resp.text(), resp.status
            t1 = time.perf_counter()
            result.gets.append(t1 - t0)
            token = TOKEN.search(page)
            if status != 200 or token is None:
                result.errors += 1
                continue
            i = next(numbers)
            data = {"body": f"{LETTER} #{i}", "email": f"s{i}@example.com", "name": "测试",
                    "token": token[1]}
            async with http.post(server.url, data=data) as resp:
                page, status = await resp.text(), resp.status
            result.posts.append(time.perf_counter() - t1)
            number = TRACKING.search(page)
            if status != 200 or (ours and number is None):
                result.errors += 1
            elif number is not None:
                result.tracking_nos.append(number[1])

    c0 = tree_cpu_seconds(server.proc.pid)
    server.probe_start()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        result.seconds = time.perf_counter() - t0
    requests = max(len(result.gets) + len(result.posts), 1)
    result.server_us = (tree_cpu_seconds(server.proc.pid) - c0) / requests * 1e6
    result.stalls = await server.probe_read()
    return result


@dataclass
class Round:
    """A bare window, then ours, then how far the filing lagged behind our pages."""

    bare: Flow
    ours: Flow
    filed_in_window: int  # of ours.tracking_nos, filed and acknowledged when the window closed
    filed_by_end: int  # of ours.tracking_nos, filed (acknowledged or not) when it closed
    filed_lag: float  # seconds after the window until every one was filed ...
    acked_lag: float  # ... and its acknowledgement written by the outbox worker
    missing: int  # shown to a citizen, yet not filed and acknowledged by the timeout


def acknowledged(db: Path, after_id: int) -> tuple[set[str], set[str]]:
    """Tracking numbers of the letters filed since ``after_id``, and those of them whose
    acknowledgement the outbox worker has written."""
    with sqlite3.connect(db, timeout=30) as con:
        rows = con.execute(
            "select s.tracking_no, exists(select 1 from outbox o where o.submission_id = s.id"
            " and o.purpose = 'ack' and o.state = 'sent') from submissions s where s.id > ?",
            (after_id,)).fetchall()
    return {tn for tn, _ in rows}, {tn for tn, sent in rows if sent}


async def sustained_round(db: Path, bare: Server, ours: Server, clients: int, seconds: float,
                          numbers: itertools.count[int]) -> Round:
    with sqlite3.connect(db, timeout=30) as con:
        (after_id,) = con.execute("select coalesce(max(id), 0) from submissions").fetchone()
    b = await flow(bare, clients, seconds, False, numbers)
    o = await flow(ours, clients, seconds, True, numbers)
    window_end, wanted = time.perf_counter(), set(o.tracking_nos)
    filed, acked = acknowledged(db, after_id)
    in_window, by_end = len(wanted & acked), len(wanted & filed)
    filed_lag = acked_lag = None
    deadline = window_end + max(60.0, seconds * 10)
    while time.perf_counter() < deadline:
        if filed_lag is None and wanted <= filed:
            filed_lag = time.perf_counter() - window_end
        if wanted <= acked:
            acked_lag = time.perf_counter() - window_end
            break
        await asyncio.sleep(0.1)
        filed, acked = acknowledged(db, after_id)
    late = time.perf_counter() - window_end
    return Round(b, o, in_window, by_end, filed_lag if filed_lag is not None else late,
                 acked_lag if acked_lag is not None else late, len(wanted - acked))


def report_sustained(clients: int, seconds: float, rounds: list[Round]) -> int:
    """Print the rounds and the medians; 1 if a letter shown to a citizen was not filed and
    acknowledged, else 0."""
    print(f"web form sustained, {clients} clients each GET the form and POST it, {seconds:g} s "
          f"per window, {len(rounds)} alternating round(s), filing and acknowledging alongside "
          "(SQLite)")
    print(f"{'':24}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'POST p99':>9}{'errors':>7}"
          f"{'server µs':>10}{'ratio':>7}")
    for i, r in enumerate(rounds, 1):
        for name, f in ((f"{i}: bare aiohttp app", r.bare), (f"{i}: GET+POST /feedback", r.ours)):
            ratio = f"{r.ours.rate / r.bare.rate:7.3f}" if f is r.ours else ""
            print(f"{name:24}{f.rate:8.0f}{pct(f.latencies, 50):8.1f}"
                  f"{pct(f.latencies, 99):8.1f}{pct(f.posts, 99):9.1f}{f.errors:7d}"
                  f"{f.server_us:10.0f}{ratio}")
        print(f"{'':24}{len(r.ours.tracking_nos)} letters posted, {r.filed_by_end} filed and "
              f"{r.filed_in_window} acknowledged by the window's end; all filed {r.filed_lag:.1f} s and "
              f"acknowledged {r.acked_lag:.1f} s after it"
              + (f"; {r.missing} MISSING" if r.missing else ""))
        if r.ours.stalls is not None:
            print_stalls(r.ours.stalls)
    ratios = sorted(r.ours.rate / r.bare.rate for r in rounds)
    p99 = sorted(pct(r.ours.latencies, 99) for r in rounds)
    post_p99 = statistics.median(pct(r.ours.posts, 99) for r in rounds)
    print(f"sustained ratio ours/bare: median {statistics.median(ratios):.3f} "
          f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target >= 0.4); p99 median "
          f"{statistics.median(p99):.1f} ms (target < 50 ms; POST alone {post_p99:.1f} ms)")
    posted = sum(len(r.ours.tracking_nos) for r in rounds)
    missing = sum(r.missing for r in rounds)
    lag = statistics.median(r.acked_lag for r in rounds)
    print(f"filed and acknowledged: {posted - missing} of {posted} letters posted, "
          f"the last a median {lag:.1f} s after its window closed")
    return 1 if missing or not posted else 0


def print_stalls(s: dict[str, Any]) -> None:
    """One window's event-loop stalls (bench/loop_probe.py): a 1 ms sleep woke this late."""
    bounds = s["bounds_ms"]
    labels = [f"<{bounds[0]}", *(f"{lo}-{hi}" for lo, hi in zip(bounds, bounds[1:], strict=False)),
              f">={bounds[-1]}"]
    hist = " ".join(f"{label}:{n}" for label, n in zip(labels, s["buckets"], strict=True))
    full = s["gc_full_ms"]
    print(f"{'':24}loop late by ms (count): {hist}; stalled {s['stalled_ms_per_s']:.0f} ms/s; "
          f"longest {', '.join(f'{w:.1f}' for w in s['worst_ms'][:5])} ms")
    print(f"{'':24}gc: {len(full)} full collection(s)"
          + (f" ({', '.join(f'{t:.1f}' for t in full[:5])} ms)" if full else "")
          + f", {s['gc_young_ms']:.0f} ms in young ones over {s['seconds']:.1f} s")
    print(f"{'':24}callbacks: {s['callbacks']}, busy {s['callback_ms_per_s']:.0f} ms/s "
          f"({s['callback_cpu_ms_per_s']:.0f} ms/s of CPU); {s['long_wall']} held the loop 5 ms "
          "or longer; 5 ms of CPU or more (count, CPU ms, count by wall-clock): "
          + ("; ".join(f"{name} ({n}, {ms:.0f}, {wall})" for name, n, ms, wall in s["long_cpu"])
             or "none"))


async def wait_filed(db: Path, timeout: float) -> tuple[float, int]:
    """perf_counter time when no stored letter is left unfiled, and the outbox rows then; then
    waits (untimed) until the outbox has written every acknowledgement, so that the next run
    starts on an idle service."""
    deadline = time.monotonic() + timeout
    filed_at: float | None = None
    while True:
        with sqlite3.connect(db, timeout=30) as con:
            (pending,) = con.execute(
                "select count(*) from raw_intake where state = 'pending'").fetchone()
            (acks,) = con.execute("select count(*) from outbox").fetchone()
            (unsent,) = con.execute(
                "select count(*) from outbox where state in ('pending', 'sending')").fetchone()
        if filed_at is None and not pending:
            filed_at, filed_acks = time.perf_counter(), acks
        if (filed_at is not None and not unsent) or time.monotonic() > deadline:
            return filed_at or time.perf_counter(), filed_acks if filed_at else acks
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main())
