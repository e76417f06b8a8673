"""Time to build one weekly digest over a million submissions, on SQLite and PostgreSQL.

Usage: python bench/digest_build.py [--quick] [--rows N] [--db PATH [--reuse]] [--repeat K]
                                    [--no-postgres | --pg-url URL]

Fills a migrated database with N submissions (default 1,000,000; --quick 20,000) spread evenly
over the two years up to 2026-W47 — about 9,600 a week at full size — with a mix of channels,
categories, statuses, spam and machine mail (SQLite: executemany and no ANALYZE, as the service
never runs one; PostgreSQL: COPY, then VACUUM ANALYZE as autovacuum would). Then builds the
digest of 2026-W47 the way the service does (figures by SQL, masked excerpts, chart, XLSX of the
week's rows, both bodies) K times and prints the seconds: the figures alone, and the whole
digest. Printed, not asserted; targets < 5 s on SQLite, < 3 s on PostgreSQL.

What a process pays once — importing matplotlib, openpyxl and the classifier's taxonomy, loading
jieba's dictionary, finding the CJK font — is printed apart from the builds (a running service
pays it at start or on its first digest, not weekly).

``--db PATH --reuse`` keeps the SQLite file between runs and skips the 2–3 minute fill when it
already holds rows; ``--pg-url`` measures an existing PostgreSQL database (filled if empty)
instead of starting a throw-away cluster. PostgreSQL is measured whenever it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEEK = "2026-W47"
TZ = ZoneInfo("Asia/Shanghai")
SPAN_DAYS = 728
TEXTS = (
    "我叫张建国，手机13812345678，小区门口的监控坏了半年，晚上电动车被偷了好几辆，报警以后没有下文。",
    "市民李女士反映：派出所办事窗口态度差，材料来回跑了三趟，希望整改“一站式”服务。",
    "政法队伍教育整顿期间，有干部仍然在工作日饮酒，群众意见很大，请严肃处理。联系邮箱 wang@example.com",
    "我是退休教师赵卫东，身份证110101195003071234，法院判决执行了两年还没有结果。",
    "反映某街道综治中心形同虚设，平安建设宣传只在墙上，请市委政法委督促落实。",
    "关于扫黑除恶常态化，我们村的霸占鱼塘问题至今没人管，电话 0371-66123456。",
)
CHANNELS = ("web", "email", "email", "phone", "post")
CATEGORIES = [str(i) for i in range(1, 11)] + ["other", "other", "spam", "unclassified"]
STATUSES = ("new", "accepted", "in_progress", "resolved", "resolved", "rejected", "forwarded")
COLUMNS = ("tracking_no", "channel", "subject", "text", "category", "measure", "confidence",
           "needs_review", "status", "auto", "satisfaction", "received_at", "created_at",
           "updated_at", "accepted_at", "resolved_at", "from_name")


def _row(i: int, rng: random.Random, end: datetime) -> tuple:
    """One submission in COLUMNS order, times as aware UTC datetimes."""
    received = end - timedelta(seconds=rng.random() * SPAN_DAYS * 86400)
    category = rng.choice(CATEGORIES)
    status = rng.choice(STATUSES)
    accepted = received + timedelta(days=rng.random() * 20) if status != "new" else None
    resolved = (accepted + timedelta(days=rng.random() * 50)
                if accepted and status == "resolved" else None)
    auto = "auto-reply" if i % 97 == 0 else ("bounce" if i % 211 == 0 else None)
    measure = f"{category}.{rng.randint(1, 4)}" if category.isdigit() else None
    return (
        f"FK{i:010d}", rng.choice(CHANNELS), "来信", TEXTS[i % len(TEXTS)], category, measure,
        rng.random(), False, status, auto, "满意" if resolved and rng.random() < 0.3 else None,
        received, received, accepted or received, accepted, resolved,
        "张建国" if i % 6 == 0 else None,
    )


def rows(n: int, end: datetime) -> Iterator[tuple]:
    rng = random.Random(47)
    return (_row(i, rng, end) for i in range(n))


def _stamp(value: object) -> object:
    """SQLAlchemy's SQLite storage format for our UTC datetimes."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def fill_sqlite(path: Path, n: int, end: datetime) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    sql = (f"INSERT INTO submissions ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(COLUMNS))})")
    batch: list[tuple] = []
    for row in rows(n, end):
        batch.append(tuple(_stamp(v) for v in row))
        if len(batch) == 50_000:
            con.executemany(sql, batch)
            con.commit()
            batch.clear()
    con.executemany(sql, batch)
    con.commit()
    # No ANALYZE: the service never runs it, so the planner works without statistics here as
    # it does on a real database (PostgreSQL's autovacuum does analyze: VACUUM ANALYZE there).
    con.close()


def sqlite_rows(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM submissions").fetchone()[0])
    finally:
        con.close()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fill_postgres(url: str, n: int, end: datetime) -> tuple[int, float]:
    """COPY the rows in (if the table is empty), then VACUUM ANALYZE.

    Returns the row count and the share of the table's pages marked all-visible (what decides
    whether an index-only scan really skips the table).
    """
    import asyncpg

    con = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        have = int(await con.fetchval("SELECT count(*) FROM submissions"))
        if have == 0:
            # The throw-away cluster commits asynchronously; VACUUM can only mark pages
            # all-visible once the inserting commit is on disk, so this one commit waits for it.
            await con.execute("SET synchronous_commit = on")
            await con.copy_records_to_table("submissions", records=rows(n, end),
                                            columns=list(COLUMNS))
            # Index-only scans need the visibility map; autovacuum would set it in a live system.
            await con.execute("VACUUM ANALYZE submissions")
            have = n
        visible = await con.fetchval(
            "SELECT relallvisible::float / greatest(relpages, 1) FROM pg_class "
            "WHERE relname = 'submissions'")
        return have, float(visible)
    finally:
        await con.close()


def one_time_costs() -> dict[str, float]:
    """Seconds for what a process pays once: imports, jieba's dictionary, the CJK font lookup."""
    out: dict[str, float] = {}
    t = time.perf_counter()
    import bot.runtime  # noqa: F401  (templates)
    import handlers.digest  # noqa: F401  (matplotlib, openpyxl, the taxonomy and its parser)
    from handlers.digest import chart, figures, mask
    out["imports"] = time.perf_counter() - t
    t = time.perf_counter()
    figures.taxonomy_titles()
    figures.measure_texts()
    out["taxonomy"] = time.perf_counter() - t
    t = time.perf_counter()
    mask.mask("我叫张建国，住在高新区。")
    out["jieba dictionary"] = time.perf_counter() - t
    t = time.perf_counter()
    chart.cjk_font()
    out["CJK font"] = time.perf_counter() - t
    return out


async def build_times(url: str, repeat: int
                      ) -> tuple[list[float], list[float], list[float], int, int]:
    """Per run: seconds of the figures, of the whole digest and this process's CPU seconds
    for the whole digest (less disturbed by other work on the machine); XLSX rows, counted."""
    from bot.runtime import mail_templates
    from handlers.digest import Options, Week, build
    from handlers.digest.figures import collect
    from storage.db import make_engine, sessionmaker

    engine = make_engine(url)
    sessions = sessionmaker(engine)
    week = Week.parse(WEEK)
    figures_s: list[float] = []
    whole_s: list[float] = []
    cpu_s: list[float] = []
    try:
        for _ in range(repeat):
            async with sessions() as s:
                t = time.perf_counter()
                figures = await collect(s, week, Options())
                figures_s.append(time.perf_counter() - t)
            async with sessions() as s:
                t, cpu = time.perf_counter(), time.process_time()
                built = await build(s, week, Options(), mail_templates(),
                                    "feedback@example.gov.cn")
                whole_s.append(time.perf_counter() - t)
                cpu_s.append(time.process_time() - cpu)
    finally:
        await engine.dispose()
    return figures_s, whole_s, cpu_s, built.xlsx_rows, figures.total


def report(name: str, url: str, repeat: int) -> float:
    """Build ``repeat`` times and print; returns the median seconds of the whole digest."""
    figures_s, whole_s, cpu_s, xlsx_rows, counted = asyncio.run(build_times(url, repeat))
    runs = ", ".join(f"{s:.2f}" for s in whole_s)
    print(f"[{name}] build {WEEK}: figures (SQL + excerpts) median "
          f"{statistics.median(figures_s):.2f} s; whole digest median "
          f"{statistics.median(whole_s):.2f} s (runs: {runs}; our process's CPU "
          f"{statistics.median(cpu_s):.2f} s); {counted:,} counted this week, "
          f"{xlsx_rows:,} XLSX rows")
    return statistics.median(whole_s)


def bench_sqlite(args: argparse.Namespace, n: int, end: datetime, tmp: Path
                 ) -> tuple[float, int]:
    """(median seconds of the whole digest, submissions in the database)."""
    from storage.db import upgrade

    path = args.db or tmp / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    have = sqlite_rows(path)
    if have and args.reuse:
        print(f"[sqlite] reusing {path}: {have:,} submissions")
    else:
        if have:
            sys.exit(f"{path} already holds {have:,} submissions: add --reuse, or remove it")
        t = time.perf_counter()
        fill_sqlite(path, n, end)
        print(f"[sqlite] generate {n:,} submissions: {time.perf_counter() - t:.1f} s")
        have = n
    return report("sqlite", url, args.repeat), have


def bench_postgres(args: argparse.Namespace, n: int, end: datetime
                   ) -> tuple[float, int] | None:
    from storage.db import upgrade
    from testing.postgres import Postgres

    if args.pg_url:
        upgrade(args.pg_url)
        return _postgres_run(args.pg_url, args.repeat, n, end)
    if not Postgres.available():
        print("[postgres] skipped: PostgreSQL is not installed")
        return None
    with Postgres() as pg:
        url = pg.create_database("digest_bench")
        upgrade(url)
        return _postgres_run(url, args.repeat, n, end)


def _postgres_run(url: str, repeat: int, n: int, end: datetime) -> tuple[float, int]:
    t = time.perf_counter()
    have, visible = asyncio.run(fill_postgres(url, n, end))
    print(f"[postgres] {have:,} submissions ready (COPY + VACUUM ANALYZE when empty): "
          f"{time.perf_counter() - t:.1f} s; {visible:.0%} of the pages all-visible")
    return report("postgres", url, repeat), have


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 submissions, one build")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--db", type=Path, default=None, help="keep the SQLite database here")
    ap.add_argument("--reuse", action="store_true",
                    help="with --db: use the rows already there instead of filling it")
    ap.add_argument("--repeat", type=int, default=None, help="builds per backend (default 3)")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--pg-url", default=None,
                    help="an existing postgresql+asyncpg:// database to measure (filled if empty)")
    args = ap.parse_args()
    n = args.rows or (20_000 if args.quick else 1_000_000)
    args.repeat = args.repeat or (1 if args.quick else 3)

    costs = one_time_costs()
    print("once per process (not part of a build): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in costs.items()))
    from handlers.digest import Week

    end = Week.parse(WEEK).end(TZ)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_s, sqlite_n = bench_sqlite(args, n, end, Path(tmp))
    pg = None if args.no_postgres else bench_postgres(args, n, end)
    print(f"weekly digest: SQLite {sqlite_s:.2f} s over {sqlite_n:,} submissions (target < 5 s)"
          + ("" if pg is None else
             f"; PostgreSQL {pg[0]:.2f} s over {pg[1]:,} submissions (target < 3 s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
