"""The Maildir folder: a file dropped into new/ is filed, acknowledged and moved to cur/."""

from __future__ import annotations

import os
from pathlib import Path

from bot.app import start
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import letter, raw_rows, submissions, until
from tests.conftest import make_settings


async def test_dropped_file_is_taken_in(db_url, tmp_path: Path, smtp_sink: SmtpSink):
    maildir = tmp_path / "drop"
    settings = make_settings(db_url, tmp_path, smtp_sink, maildir={"path": str(maildir)})
    service = await start(settings)
    try:
        raw = letter(sender="walkin@qq.com").replace(b"\r\n", b"\n")  # as saved on disk
        target = maildir / "new" / "1700000000.M1P2.host"
        await until(lambda: _exists(maildir / "new"), what="maildir created")
        target.write_bytes(raw)
        os.utime(target, (0, 0))  # written long ago: complete
        [ack] = await wait_mail(smtp_sink, 1)
        assert ack.rcpt_tos == ["walkin@qq.com"]
        [row] = await raw_rows(service.runtime)
        assert row.raw == raw and row.source_key == "maildir:1700000000.M1P2.host"
        assert row.message_id
        assert not target.exists()
        assert [p.name for p in (maildir / "cur").iterdir()] == ["1700000000.M1P2.host:2,S"]
        [sub] = await submissions(service.runtime)
        assert sub.from_addr == "walkin@qq.com" and sub.channel == "email"
    finally:
        await service.stop()


async def _exists(path: Path) -> bool:
    return path.is_dir()
