"""CLI command ``feedback-bot ingest FILE…``: take in saved mail (.eml files, mbox archives).

For importing past mail, or a message someone saved from another mailbox. Each message is stored
as a raw intake row with source key ``import:<sha256 of its bytes>`` (importing the same file
twice adds nothing) and run through the pipeline at once, synchronously, so the summary can say
what became of it: a new submission, a follow-up of an existing one, a duplicate of mail already
taken in (same bytes, or the same Message-ID), or machine mail (auto-replies, bounces).
Acknowledgements go to the outbox as usual; the running service delivers them.
mbox archives are read with the stdlib ``mailbox`` module; anything else is one message.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import mailbox
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.sources.mailstore import date_of, store_mail
from bot.workers.intake import Outcome, process_raw
from storage.db import upgrade

OUTCOMES = (
    ("new", "新来信"),
    ("followup", "追加到已有来信"),
    ("duplicate", "重复（已导入过或 Message-ID 相同）"),
    ("machine", "机器邮件（自动回复、退信等，不回执）"),
    ("failed", "处理出错（已保留，服务会重试）"),
)


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def messages(path: Path) -> tuple[int, Iterator[bytes]]:
    """(count, raw messages) of one file: every message of an mbox, or the file itself."""
    if not _is_mbox(path):
        return 1, iter([path.read_bytes()])
    box = mailbox.mbox(path, create=False)
    keys = box.keys()

    def each() -> Iterator[bytes]:
        try:
            for key in keys:
                yield box.get_bytes(key)
        finally:
            box.close()

    return len(keys), each()


def kind_of(outcome: Outcome | None) -> str:
    """Which summary line an outcome counts under (None: the same bytes were imported before)."""
    if outcome is None or outcome.state in ("discarded", "duplicate"):
        return "duplicate"
    if outcome.state in ("held", "quarantined", "missing"):
        return "failed"
    if outcome.auto:
        return "machine"
    return "followup" if outcome.followup else "new"


async def ingest_one(rt: Runtime, raw: bytes, acknowledge: bool = True) -> str:
    key = "import:" + hashlib.sha256(raw).hexdigest()
    async with rt.sessions.begin() as session:
        raw_id = await store_mail(session, source_key=key, raw=raw, received_at=date_of(raw),
                                  acknowledge=acknowledge)
    if raw_id is None:
        return kind_of(None)
    return kind_of(await process_raw(rt, raw_id))


async def ingest(rt: Runtime, files: list[Path], progress: bool = True,
                 acknowledge: bool = True) -> Counter[str]:
    counts: Counter[str] = Counter()
    sources = []
    for path in files:
        try:
            sources.append(messages(path))
        except OSError as exc:
            print(f"无法读取 {path}：{exc.strerror or exc}", file=sys.stderr)
            counts["unreadable"] += 1
    total = sum(n for n, _ in sources)
    with tqdm(total=total, unit="封", desc="导入", disable=not progress) as bar:
        for _n, raws in sources:
            for raw in raws:
                counts[await ingest_one(rt, raw, acknowledge)] += 1
                bar.update(1)
    return counts


def summary(counts: Counter[str]) -> str:
    total = sum(counts[k] for k, _ in OUTCOMES)
    lines = [f"导入完成：共 {total} 封邮件"]
    lines += [f"  {label}：{counts[key]}" for key, label in OUTCOMES]
    if counts["unreadable"]:
        lines.append(f"  无法读取的文件：{counts['unreadable']}")
    return "\n".join(lines)


async def _main(settings: Settings, files: list[Path], progress: bool,
                acknowledge: bool) -> Counter[str]:
    rt = Runtime.create(settings)
    try:
        return await ingest(rt, files, progress, acknowledge)
    finally:
        await rt.close()


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    upgrade(settings.database.url)
    counts = asyncio.run(_main(settings, [Path(f) for f in args.files],
                               progress=not args.no_progress, acknowledge=not args.no_ack))
    print(summary(counts))
    return 1 if counts["unreadable"] else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ingest", help="导入保存的邮件（.eml 文件或 mbox 归档）")
    parser.add_argument("files", nargs="+", metavar="FILE", help=".eml 文件或 mbox 归档")
    parser.add_argument("--no-progress", action="store_true", help="不显示进度条")
    parser.add_argument("--no-ack", action="store_true",
                        help="只登记，不给来信人发确认邮件（导入很早以前的来信时使用）")
    parser.set_defaults(func=run)
