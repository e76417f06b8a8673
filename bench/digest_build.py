"""Time to build one weekly digest over a large SQLite database (printed, not asserted).

Usage: python bench/digest_build.py [--quick] [--rows N] [--db PATH]

Fills a fresh, migrated SQLite database with N submissions (default 1,000,000; --quick 20,000)
spread evenly over the two years up to 2026-W47 — about 9,600 a week at full size — with a mix
of channels, categories, statuses, spam and machine mail, written with executemany. Then builds
the digest of 2026-W47 the way the service does (figures by SQL GROUP BY, masked excerpts, chart,
XLSX of the week's rows, both bodies) and prints the seconds each part took.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEEK = "2026-W47"
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
SATISFACTION = (None, None, "满意", "基本满意", "不满意")


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _row(i: int, rng: random.Random, end: datetime) -> tuple:
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
        rng.random(), 0, status, auto, "满意" if resolved and rng.random() < 0.3 else None,
        _stamp(received), _stamp(received), _stamp(accepted or received),
        _stamp(accepted) if accepted else None, _stamp(resolved) if resolved else None,
        "张建国" if i % 6 == 0 else None,
    )


def fill(path: Path, n: int, end: datetime) -> float:
    start = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    rng = random.Random(47)
    sql = ("INSERT INTO submissions (tracking_no, channel, subject, text, category, measure, "
           "confidence, needs_review, status, auto, satisfaction, received_at, created_at, "
           "updated_at, accepted_at, resolved_at, from_name) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    chunk = 50_000
    for first in range(0, n, chunk):
        con.executemany(sql, (_row(i, rng, end) for i in range(first, min(n, first + chunk))))
        con.commit()
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - start


async def build_once(url: str) -> dict[str, float]:
    from bot.runtime import mail_templates
    from handlers.digest import Options, Week, build
    from handlers.digest.figures import collect
    from storage.db import make_engine, sessionmaker

    engine = make_engine(url)
    sessions = sessionmaker(engine)
    week = Week.parse(WEEK)
    times: dict[str, float] = {}
    try:
        async with sessions() as s:
            t = time.perf_counter()
            figures = await collect(s, week, Options())
            times["figures (SQL + excerpts)"] = time.perf_counter() - t
            t = time.perf_counter()
            built = await build(s, week, Options(), mail_templates(), "feedback@example.gov.cn")
            times["whole digest"] = time.perf_counter() - t
        times["week rows in XLSX"] = built.xlsx_rows
        times["counted this week"] = figures.total
    finally:
        await engine.dispose()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 submissions")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--db", type=Path, default=None, help="keep the database here")
    args = ap.parse_args()
    n = args.rows or (20_000 if args.quick else 1_000_000)

    from handlers.digest import Week
    from storage.db import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        end = Week.parse(WEEK).end(ZoneInfo("Asia/Shanghai"))
        print(f"generate {n:,} submissions: {fill(path, n, end):.1f} s")
        # A first build warms jieba's dictionary and matplotlib's font cache, as in a running
        # service; the second is what each weekly run costs.
        for label in ("cold", "warm"):
            times = asyncio.run(build_once(url))
            parts = ", ".join(f"{k}: {v:.2f} s" if isinstance(v, float) else f"{k}: {v:,}"
                              for k, v in times.items())
            print(f"build {WEEK} ({label}): {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
