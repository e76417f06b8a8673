"""``feedback-bot digest``: build any week's digest on demand, write it out, or send it.

``--out DIR`` writes digest.html (chart embedded, for a browser), digest.txt, chart.png,
week.xlsx and digest.eml (the mail as the first recipient would get it). ``--send`` queues the
digest through the outbox like the schedule does, and like the schedule sends a week only once;
``--force`` sends it again. The service's outbox worker (``feedback-bot serve``) delivers it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.workers.digest import options, send_week
from handlers.digest import Built, Week, build, week_before
from storage.db import upgrade_async, utcnow


def _write(built: Built, out: Path, settings: Settings) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "digest.html").write_text(built.console_html, encoding="utf-8")
    (out / "digest.txt").write_text(built.text, encoding="utf-8")
    (out / "chart.png").write_bytes(built.chart_png)
    (out / "week.xlsx").write_bytes(built.xlsx)
    to = settings.digest.recipients[:1] or [settings.smtp.from_addr]
    [message] = built.messages(to, settings.smtp.from_addr, settings.smtp.from_name,
                               secret=settings.secret(), id_domain=settings.message_id_domain)
    (out / "digest.eml").write_bytes(message.data)


async def _run(settings: Settings, week: Week, out: Path | None, send: bool, force: bool) -> int:
    await upgrade_async(settings.database.url)
    rt = Runtime.create(settings, with_classifier=False)
    try:
        if out is not None:
            async with rt.sessions() as session:
                built = await build(session, week, options(settings), rt.templates,
                                    settings.smtp.from_addr)
            _write(built, out, settings)
            print(f"{week}: {built.figures.total} submissions; written to {out}")
        if send:
            if await send_week(rt, week, force=force):
                print(f"{week}: queued for {len(settings.digest.recipients)} recipients")
            else:
                print(f"{week}: already sent (use --force to send it again)")
    finally:
        await rt.close()
    return 0


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    try:
        week = (Week.parse(args.week) if args.week
                else week_before(utcnow(), ZoneInfo(settings.digest.timezone)))
    except ValueError as exc:
        print(f"--week: {exc}", file=sys.stderr)
        return 2
    if args.send and not settings.digest.recipients:
        print("--send: no [digest] recipients configured", file=sys.stderr)
        return 2
    if not args.send and args.out is None:
        args.out = Path(f"digest-{week}")
    return asyncio.run(_run(settings, week, args.out, args.send, args.force))


def register(sub: Any) -> None:
    p = sub.add_parser("digest", help="build (and optionally send) a weekly digest")
    p.add_argument("--week", help="ISO week such as 2026-W47 (default: the last complete week)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write digest.html, digest.txt, chart.png, week.xlsx, digest.eml here")
    p.add_argument("--send", action="store_true",
                   help="queue it to [digest] recipients (once per week)")
    p.add_argument("--force", action="store_true", help="with --send: send even if already sent")
    p.set_defaults(func=run)
