"""``feedback-bot ingest``: past mail from an mbox archive, counted, and never imported twice."""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.runtime import Runtime
from storage.models import Outbox, Submission
from tests.bot.sources.mailtools import letter


def _config(db_url: str, tmp_path: Path) -> Path:
    var = tmp_path / "var"
    path = tmp_path / "feedback-bot.toml"
    path.write_text(
        f'var_dir = "{var}"\n'
        f'[database]\nurl = "{db_url}"\n'
        '[web]\nsecret_key = "test-secret-key"\n'
        '[smtp]\nfrom_addr = "feedback@zfw.example.gov.cn"\n'
        f'[intake]\nattachments_dir = "{var}/attachments"\n'
        f'[classifier]\nmodel_dir = "{var}/models"\n'
        f'[maildir]\npath = "{var}/maildir"\n'
    )
    return path


def _archive(tmp_path: Path) -> Path:
    citizen = letter(sender="zhang@example.com", msgid="<first@example.com>")
    auto = letter(subject="自动回复：休假中", sender="away@example.com",
                  headers={"Auto-Submitted": "auto-replied"})
    # The same letter again, as delivered a second time (an extra Received line).
    again = b"Received: from mx2.example.com; Mon, 1 Jan 2024 00:00:00 +0800\r\n" + citizen
    path = tmp_path / "old.mbox"
    box = mailbox.mbox(path)
    for raw in (citizen, auto, again):
        box.add(raw)
    box.close()
    return path


def _counts(out: str) -> dict[str, int]:
    lines = [line.strip() for line in out.splitlines() if "：" in line]
    return {k: int(v) for k, v in (line.rsplit("：", 1) for line in lines if line[-1].isdigit())}


def test_ingest_counts_and_is_idempotent(db_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]):
    config, archive = _config(db_url, tmp_path), _archive(tmp_path)
    assert main(["ingest", "--config", str(config), "--no-progress", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "共 3 封邮件" in out
    first = _counts(out)
    assert first["新来信"] == 1
    assert first["重复（已导入过或 Message-ID 相同）"] == 1
    assert first["机器邮件（自动回复、退信等，不回执）"] == 1
    assert main(["ingest", "--config", str(config), "--no-progress", str(archive)]) == 0
    second = _counts(capsys.readouterr().out)
    assert second["新来信"] == 0 and second["重复（已导入过或 Message-ID 相同）"] == 3
    subs, acks = asyncio.run(_stored(config))
    assert sorted((s.from_addr, s.auto is not None) for s in subs) == [
        ("away@example.com", True), ("zhang@example.com", False)]
    assert [a.recipient for a in acks] == ["zhang@example.com"]


async def _stored(config: Path) -> tuple[list[Submission], list[Outbox]]:
    from bot.config import load_settings

    rt = Runtime.create(load_settings(config), with_classifier=False)
    try:
        async with rt.sessions() as s:
            subs = list(await s.scalars(select(Submission)))
            acks = list(await s.scalars(select(Outbox).where(Outbox.purpose == "ack")))
        return subs, acks
    finally:
        await rt.close()


def test_ingest_no_ack_files_without_acknowledging(db_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    config, archive = _config(db_url, tmp_path), _archive(tmp_path)
    assert main(["ingest", "--config", str(config), "--no-progress", "--no-ack",
                 str(archive)]) == 0
    assert _counts(capsys.readouterr().out)["新来信"] == 1
    subs, acks = asyncio.run(_stored(config))
    assert len(subs) == 2 and acks == []
