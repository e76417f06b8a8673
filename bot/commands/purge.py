"""``feedback-bot purge``: delete the personal data of submissions closed long ago.

Run it from cron (e.g. daily). Submissions closed (resolved, rejected, forwarded) more than
``intake.retention_days`` ago lose name, address, phone, subject, text, follow-up texts, raw
input, sent mails and attachments; anonymous statistics stay (storage/retention.py says exactly
what). Each submission is purged in its own transaction; attachment files no row refers to any
more are deleted after the commit, so a crash can leave an orphan file but never a row whose file
is gone. ``--dry-run`` only counts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta

from bot.config import Settings, load_settings
from storage import retention
from storage.blobs import BlobStore
from storage.db import make_engine, sessionmaker, upgrade_async, utcnow

log = logging.getLogger(__name__)


async def purge(settings: Settings, *, dry_run: bool = False, days: int | None = None
                ) -> tuple[int, int]:
    """(submissions purged, attachment files deleted); ``dry_run`` counts up to one batch."""
    keep_days = days or settings.intake.retention_days
    cutoff = utcnow() - timedelta(days=keep_days)
    blobs = BlobStore(settings.path(settings.intake.attachments_dir))
    await upgrade_async(settings.database.url)
    engine = make_engine(settings.database.url)
    sessions = sessionmaker(engine)
    purged = files = 0
    try:
        while True:
            async with sessions() as session:
                ids = await retention.due(session, cutoff)
            if dry_run:
                return len(ids), 0
            if not ids:
                break
            for sub_id in ids:
                async with sessions.begin() as session:
                    orphans = await retention.purge_submission(session, sub_id, keep_days)
                files += await asyncio.to_thread(blobs.remove, orphans)
                purged += 1
    finally:
        await engine.dispose()
        log.info("purge: %d submissions, %d files", purged, files)
    return purged, files


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    n, files = asyncio.run(purge(settings, dry_run=args.dry_run, days=args.days))
    if args.dry_run:
        print(f"{n} submissions would be purged (closed more than "
              f"{args.days or settings.intake.retention_days} days ago)")
    else:
        print(f"purged {n} submissions, deleted {files} attachment files")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("purge", help="delete personal data of submissions closed long ago")
    p.add_argument("--dry-run", action="store_true", help="only count what would be purged")
    p.add_argument("--days", type=int, default=None,
                   help="retention in days (default: intake.retention_days)")
    p.set_defaults(func=run)
