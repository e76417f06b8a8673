"""``feedback-bot digest``: writing a week's digest to files, and sending it once (or forced)."""

from __future__ import annotations

import asyncio
import email
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.db import make_engine, sessionmaker
from storage.models import Outbox


def config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "feedback-bot.toml"
    cfg.write_text(
        f'var_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{db_url}"\n'
        '[smtp]\nfrom_addr = "feedback@zfw.example.gov.cn"\n'
        '[digest]\nrecipients = ["leader@example.gov.cn"]\n', encoding="utf-8")
    return cfg


def digest_outbox_rows(db_url: str) -> int:
    async def count() -> int:
        engine = make_engine(db_url)
        try:
            async with sessionmaker(engine)() as s:
                return int(await s.scalar(select(func.count()).select_from(Outbox)
                                          .where(Outbox.purpose == "digest")) or 0)
        finally:
            await engine.dispose()
    return asyncio.run(count())


def test_out_writes_every_part(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["digest", "--config", str(config(tmp_path, db_url)), "--week", "2026-W47",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "chart.png", "digest.eml", "digest.html", "digest.txt", "week.xlsx"]
    assert (out / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "2026年第47周" in (out / "digest.txt").read_text(encoding="utf-8")
    page = (out / "digest.html").read_text(encoding="utf-8")
    for name in ("响应率", "办结率", "满意率", "按期受理率", "按期办结率"):
        assert name in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    msg = email.message_from_bytes((out / "digest.eml").read_bytes(), policy=policy.default)
    assert msg["To"].addresses[0].addr_spec == "leader@example.gov.cn"
    assert digest_outbox_rows(db_url) == 0  # --out alone sends nothing


def test_send_respects_once_per_week_unless_forced(db_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["digest", "--config", str(config(tmp_path, db_url)), "--week", "2026-W46", "--send"]
    assert main(args) == 0
    assert digest_outbox_rows(db_url) == 1
    assert main(args) == 0
    assert "already sent" in capsys.readouterr().out
    assert digest_outbox_rows(db_url) == 1
    assert main([*args, "--force"]) == 0
    assert digest_outbox_rows(db_url) == 2


def test_bad_week_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/feedback.db")
    assert main(["digest", "--config", str(cfg), "--week", "2026-47"]) == 2
    assert "ISO week" in capsys.readouterr().err
