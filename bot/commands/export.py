"""``feedback-bot export``: every submission to stdout as JSON lines or CSV (a contract)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings, load_settings
from storage import submissions
from storage.db import make_engine, sessionmaker, upgrade_async
from storage.models import Submission

COLUMNS = ("tracking_no", "channel", "received_at", "from_name", "from_addr", "phone", "subject",
           "text", "category", "measure", "kind", "confidence", "status")


def row_of(sub: Submission, tz: ZoneInfo) -> dict[str, Any]:
    row = {c: getattr(sub, c) for c in COLUMNS}
    row["received_at"] = sub.received_at.astimezone(tz).isoformat()
    return row


def _since(value: str | None, tz: ZoneInfo) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(value), time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


async def _export(settings: Settings, fmt: str, since: datetime | None) -> int:
    tz = ZoneInfo(settings.digest.timezone)
    await upgrade_async(settings.database.url)
    engine = make_engine(settings.database.url)
    out = sys.stdout
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    n = 0
    try:
        async with sessionmaker(engine)() as session:
            async for sub in submissions.iter_since(session, since):
                row = row_of(sub, tz)
                if writer:
                    writer.writerow(row)
                else:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    finally:
        await engine.dispose()
    print(f"exported {n} submissions", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    tz = ZoneInfo(settings.digest.timezone)
    try:
        since = _since(args.since, tz)
    except ValueError:
        print(f"--since: not an ISO date: {args.since}", file=sys.stderr)
        return 2
    return asyncio.run(_export(settings, args.format, since))


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write all submissions to stdout")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--since", help="only submissions received on or after this ISO date")
    p.set_defaults(func=run)
