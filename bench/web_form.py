"""Web form throughput: our POST /feedback against a bare aiohttp handler, same client, same run.

Both servers run as their own processes on loopback; this script is the load generator (an
aiohttp client with N concurrent connections, bounded in count and time). Each of our POSTs carries
a fresh signed form token, validation and a committed database write of the letter (the raw row
with its tracking number): the service's intake writer commits the letters of all POSTs waiting at
that moment in one transaction, and each page with its tracking number comes back only after its
own letter's commit. The intake worker in the same process files the letters (classification,
acknowledgement into the outbox) in batches while the load runs, as in production. Prints
requests/s, p50/p99 latency and the ratio to the bare handler, then how long the worker took until
every letter was filed and acknowledged. Asserts nothing.

    python bench/web_form.py [--quick] [--clients 50] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.web import tokens  # noqa: E402
from tests.servers import free_port  # noqa: E402

SECRET = "bench-secret"
BARE = """
import sys
from aiohttp import web
async def ok(request):
    await request.post()
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/feedback", ok)
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


def start_ours(tmp: Path, port: int) -> subprocess.Popen[bytes]:
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
    bin_ = Path(sys.executable).parent / "feedback-bot"
    return subprocess.Popen([str(bin_), "serve", "--config", str(config)], cwd=tmp, env=env)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    n = 200 if args.quick else args.requests
    max_seconds = 20 if args.quick else 120
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bare_port, our_port = free_port(), free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)])
        ours = start_ours(tmp, our_port)
        try:
            await wait_up(f"http://127.0.0.1:{bare_port}/feedback")
            await wait_up(f"http://127.0.0.1:{our_port}/healthz")
            # warm-up: the classifier loads, the database file grows; the bare handler is
            # measured only once the warm-up letters are filed, so that our service is idle then
            await load(f"http://127.0.0.1:{our_port}/feedback", 4, 20, True, 30)
            await wait_filed(tmp / "bench.db", 120)
            b_rate, b_lat, b_err = await load(f"http://127.0.0.1:{bare_port}/feedback",
                                              args.clients, n, False, max_seconds)
            t0 = time.perf_counter()
            o_rate, o_lat, o_err = await load(f"http://127.0.0.1:{our_port}/feedback",
                                              args.clients, n, True, max_seconds)
            filed_s, acks = await wait_filed(tmp / "bench.db", max_seconds * 5)
            filed_s -= t0
        finally:
            for p in (bare, ours):
                p.terminate()
                p.wait(20)
    print(f"web form, {args.clients} concurrent clients, {n} requests each side (SQLite)")
    print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    print(f"{'bare aiohttp handler':24}{b_rate:10.0f}{pct(b_lat, 50):10.1f}{pct(b_lat, 99):10.1f}"
          f"{b_err:8d}")
    print(f"{'POST /feedback':24}{o_rate:10.0f}{pct(o_lat, 50):10.1f}{pct(o_lat, 99):10.1f}"
          f"{o_err:8d}")
    print(f"ratio ours/bare: {o_rate / b_rate:.3f}  (target >= 0.4; p99 target < 50 ms)")
    print(f"filed: every letter classified, {acks} acknowledgements queued, "
          f"{filed_s:.1f} s after the load began = {n / filed_s:.0f} letters/s through "
          "the pipeline")


async def wait_filed(db: Path, timeout: float) -> tuple[float, int]:
    """perf_counter time when no stored letter is left unfiled, and the outbox rows then."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(db, timeout=30) as con:
            (pending,) = con.execute(
                "select count(*) from raw_intake where state = 'pending'").fetchone()
            (acks,) = con.execute("select count(*) from outbox").fetchone()
        if not pending or time.monotonic() > deadline:
            return time.perf_counter(), acks
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main())
