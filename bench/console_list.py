"""How fast is the console's queue at scale? (SQLite; prints numbers, asserts nothing.)

Builds N submissions (default 1,000,000; ``--quick`` 10,000) with executemany in batches, with
their search terms (storage/search.py) when the schema has the table, then measures p50/p95 of
the queries behind /console — the first page, a deep keyset page, a category filter, the
per-category counts, and searches for rare and common words of two and more characters, each
with the counts the page shows beside it — against the same queries on an empty database.

    .venv/bin/python bench/console_list.py [--quick] [-n N] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import review_list as queue  # noqa: E402
from storage.db import make_engine, sessionmaker, upgrade  # noqa: E402
from storage.review_list import QueueFilter  # noqa: E402
from storage.search import terms_for  # noqa: E402

WORDS = ["法院执行局", "派出所", "信访", "扫黑除恶", "政法队伍", "办事效率", "窗口服务", "电话没人接",
         "判决执行", "警情处置", "社区矫正", "司法救助", "律师会见", "案件久拖不决"]
RARE = "噪音"  # a two-character word in one row of 10,000
CATEGORIES = [str(i) for i in range(1, 11)] + ["other", "spam"]
STATUSES = ["new", "accepted", "in_progress", "resolved", "rejected", "forwarded"]


def _row(i: int, rng: random.Random, now: datetime) -> tuple:
    at = (now - timedelta(seconds=i * 30 + rng.random())).strftime("%Y-%m-%d %H:%M:%S.%f")
    words = "，".join(rng.sample(WORDS, 3))
    rare = f"{RARE}扰民，" if i % 10_000 == 5_000 else ""
    return (f"FK-{i // 10000:04d}-{i % 10000:04d}", rng.choice(["email", "web", "phone"]),
            words[:12], f"{rare}{words}。希望有关部门尽快处理。第{i}号", rng.choice(CATEGORIES),
            rng.choice(["complaint", "suggestion", "inquiry"]), rng.random() < 0.1,
            rng.choice(STATUSES), "auto-reply" if rng.random() < 0.03 else None, at, at, at)


def build(path: Path, n: int, batch: int = 20_000) -> float:
    """Fill the submissions table directly (executemany); returns seconds taken."""
    rng = random.Random(7)
    start = time.perf_counter()
    now = datetime.now(UTC)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    with_terms = con.execute("SELECT 1 FROM sqlite_master WHERE name='submission_terms'").fetchone()
    sql = ("INSERT INTO submissions (tracking_no, channel, subject, text, category, kind, "
           "needs_review, status, auto, received_at, created_at, updated_at) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
    for lo in range(0, n, batch):
        rows = [_row(i, rng, now) for i in range(lo, min(n, lo + batch))]
        first = con.execute(sql, rows[0]).lastrowid or 0
        con.executemany(sql, rows[1:])
        last = con.execute("SELECT max(id) FROM submissions").fetchone()[0]
        if last != first + len(rows) - 1:
            raise SystemExit("ids of one batch are not consecutive: is another writer running?")
        if with_terms:  # what storage.submissions.add writes; the FTS5 triggers do the rest
            con.executemany("INSERT INTO submission_terms (submission_id, terms) VALUES (?, ?)",
                            [(first + k, terms_for(r[2], r[3])) for k, r in enumerate(rows)])
        con.commit()
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - start


async def timed(fn: Callable[[], Awaitable[object]], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def measure(url: str, repeat: int) -> dict[str, tuple[float, float]]:
    engine = make_engine(url)
    sessions = sessionmaker(engine)
    out: dict[str, tuple[float, float]] = {}
    try:
        async with sessions() as s:
            rows, cursor = await queue.page(s, QueueFilter(), limit=50)
            deep = cursor
            for _ in range(200):  # walk 200 pages to get a deep cursor
                if deep is None:
                    break
                _rows, nxt = await queue.page(s, QueueFilter(), after=deep, limit=50)
                deep = nxt or deep
                if nxt is None:
                    break

            def search(q: str) -> Callable[[], Awaitable[object]]:
                return lambda: queue.page(s, QueueFilter(q=q), limit=50)

            def counts(q: str) -> Callable[[], Awaitable[object]]:
                # what the page shows: exact, or over the newest letters for a very common word
                return lambda: queue.list_counts(s, QueueFilter(q=q))

            cases = {
                "first page": lambda: queue.page(s, QueueFilter(), limit=50),
                "page 200 (keyset)": lambda: queue.page(s, QueueFilter(), after=deep, limit=50),
                "category=3": lambda: queue.page(s, QueueFilter(category="3"), limit=50),
                "needs review + open": lambda: queue.page(
                    s, QueueFilter(needs_review=True, status="new"), limit=50),
                "search 执行局 (common)": search("执行局"),
                "search rare 第4321号": search("第4321号"),
                f"search 2-char rare {RARE}": search(RARE),
                "search 2-char 信访 (common)": search("信访"),
                "search 信访 + category=3": lambda: queue.page(
                    s, QueueFilter(q="信访", category="3"), limit=50),
                "tracking no exact": lambda: queue.page(s, QueueFilter(q="FK-0000-4321"), limit=50),
                "category counts": lambda: queue.category_counts(s, QueueFilter()),
                "counts 执行局 (common)": counts("执行局"),
                "counts rare 第4321号": counts("第4321号"),
                f"counts 2-char rare {RARE}": counts(RARE),
                "counts 2-char 信访 (common)": counts("信访"),
                "exact counts 信访 (not on the page)": lambda: queue.category_counts(
                    s, QueueFilter(q="信访")),
            }
            for name, fn in cases.items():
                out[name] = await timed(fn, repeat)
    finally:
        await engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10,000 rows instead of 1,000,000")
    ap.add_argument("-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    n = args.n or (10_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    try:
        run(tmp, n, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a million rows are most of a gigabyte


def run(tmp: Path, n: int, repeat: int) -> None:
    empty_url = f"sqlite+aiosqlite:///{tmp}/empty.db"
    full_url = f"sqlite+aiosqlite:///{tmp}/full.db"
    upgrade(empty_url)
    upgrade(full_url)
    took = build(tmp / "full.db", n)
    print(f"built {n:,} submissions in {took:.1f}s ({n / took:,.0f}/s)")
    empty = asyncio.run(measure(empty_url, repeat))
    full = asyncio.run(measure(full_url, repeat))
    size = sum(p.stat().st_size for p in tmp.glob("full.db*")) / 2**20
    print(f"database file {size:,.0f} MiB")
    print(f"{'query':<28}{'empty p50':>11}{'p95':>9}{f'{n:,} p50':>14}{'p95':>9}   (ms)")
    for name in full:
        e50, e95 = empty[name]
        f50, f95 = full[name]
        print(f"{name:<28}{e50:>11.2f}{e95:>9.2f}{f50:>14.2f}{f95:>9.2f}")
    shown = [k for k in full if "not on the page" not in k]  # the last is for comparison
    worst = max(shown, key=lambda k: full[k][1])
    print(f"console at {n:,} submissions: slowest p95 {full[worst][1]:.1f} ms ({worst}; "
          f"the same query on an empty database {empty[worst][1]:.1f} ms) (target < 200 ms)")


if __name__ == "__main__":
    main()
