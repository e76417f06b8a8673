"""Maildir source: mail files dropped into ``<maildir.path>/new/`` are taken in.

The embedded default (``var/maildir``) lets a new user try the service without a mail server:
copy an .eml file into ``var/maildir/new/`` and watch the acknowledgement appear in
``var/outbox/``. A mail server's local delivery (Postfix, fetchmail, getmail) can write here too.

Each file is stored as a raw intake row (source key ``maildir:<unique name before ':'>``) and
committed, and only then renamed into ``cur/`` with the Maildir "seen" info suffix ``:2,S``. A
crash in between stores nothing twice: the next scan finds the source key taken and just renames.
The folder is polled every two seconds (simple, portable, and well within what a person waits
for). The stdlib ``mailbox.Maildir`` is not used because it has no way to move a message from
new/ to cur/ without rewriting it; a rename is what the Maildir format itself prescribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.config import Settings
from bot.runtime import Runtime
from bot.sources.mailstore import store_mail
from bot.workers import runner
from bot.workers.runner import Next, Worker

log = logging.getLogger(__name__)
WORKER = "maildir"
POLL_SECONDS = 2.0
# A file written straight into new/ (not via tmp/, as a person copying a file does) may still be
# growing; one that has not changed for this long is complete.
SETTLE_SECONDS = 1.0


def task_for(settings: Settings) -> Callable[[Runtime], Awaitable[None]] | None:
    path = settings.maildir.path.strip()
    if not path:
        return None
    return lambda rt: run(rt, Path(path))


def ensure_maildir(root: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def _ready_files(new: Path, now: float) -> list[Path]:
    files = []
    with os.scandir(new) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime >= SETTLE_SECONDS:
                    files.append(Path(entry.path))
    return sorted(files, key=lambda p: p.name)


def _seen_name(name: str) -> str:
    base = name.split(":", 1)[0]
    return f"{base}:2,S"


async def take_in(rt: Runtime, root: Path, *, settle: bool = True) -> int:
    """Store every complete file in new/ and move it to cur/; return how many were new."""
    ensure_maildir(root)
    now = time.time() + (0 if settle else SETTLE_SECONDS)
    stored = 0
    for path in await asyncio.to_thread(_ready_files, root / "new", now):
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:  # another instance took it meanwhile
            continue
        key = f"maildir:{path.name.split(':', 1)[0]}"
        async with rt.sessions.begin() as session:
            raw_id = await store_mail(session, source_key=key, raw=raw)
        with contextlib.suppress(FileNotFoundError):
            path.replace(root / "cur" / _seen_name(path.name))
        if raw_id is not None:
            stored += 1
            rt.intake_wakeup.set()
    return stored


class MaildirWorker(Worker):
    name = WORKER

    def __init__(self, rt: Runtime, root: Path, poll_seconds: float = POLL_SECONDS) -> None:
        self.rt, self.root, self.poll_seconds = rt, root, poll_seconds
        self.retry_after = poll_seconds

    async def round(self) -> Next:
        n = await take_in(self.rt, self.root)
        if n:
            log.info("maildir: took in %d mails", n)
        return Next(self.poll_seconds)


async def run(rt: Runtime, root: Path, poll_seconds: float = POLL_SECONDS) -> None:
    """Forever: take in new files, on the runner (errors logged, shown on /healthz, retried)."""
    await runner.run(rt, MaildirWorker(rt, root, poll_seconds))
