"""Letters prepared in a worker process (``[intake] prepare_processes``), as ``serve`` runs by
default: filed, classified and acknowledged as in a thread, and nothing lost when the process
dies."""

from __future__ import annotations

import os
import signal
from email import policy
from email.parser import BytesParser
from pathlib import Path

from bot.app import Service, start
from testing.faults import children_of
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import letter, submissions, until
from tests.conftest import make_settings

AUTO_REPLY = {"Auto-Submitted": "auto-replied"}


def drop(maildir: Path, name: str, raw: bytes) -> None:
    target = maildir / "new" / name
    target.write_bytes(raw)
    os.utime(target, (0, 0))  # written long ago: complete


def prepare_processes() -> set[int]:
    """This process's children that prepare letters."""
    return {pid for pid in children_of(os.getpid()) if b"child_main" in _cmdline(pid)}


def stray_helpers() -> set[int]:
    """multiprocessing's resource tracker among this process's children: the third process
    that a pool of the standard library's, started with "spawn", runs beside the service."""
    return {pid for pid in children_of(os.getpid()) if b"resource_tracker" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def pool_process() -> int:
    async def found() -> int | None:
        return min(prepare_processes(), default=None)
    return await until(found, timeout=30, what="a prepare process")


async def started(db_url: str, tmp_path: Path, sink: SmtpSink) -> tuple[Service, Path]:
    maildir = tmp_path / "drop"
    settings = make_settings(db_url, tmp_path, sink, maildir={"path": str(maildir)},
                             intake={"prepare_processes": 1})
    service = await start(settings)
    await until(lambda: _is_dir(maildir / "new"), what="maildir created")
    return service, maildir


async def test_letters_prepared_in_a_worker_process(db_url, tmp_path: Path, smtp_sink: SmtpSink):
    helpers_before = stray_helpers()  # a tracker an earlier test in this process started
    service, maildir = await started(db_url, tmp_path, smtp_sink)
    try:
        await pool_process()
        # the prepare process is the one helper process: no resource tracker beside it
        assert stray_helpers() <= helpers_before
        drop(maildir, "1.M1.host", letter(sender="a@example.com"))
        drop(maildir, "2.M2.host", letter(sender="b@example.com", subject="派出所窗口服务态度差",
                                          body="派出所办事窗口态度很差，排队两个小时没人管。"))
        drop(maildir, "3.M3.host", letter(sender="away@example.com", subject="Out of office",
                                          body="I am away.", headers=AUTO_REPLY))
        acks = await wait_mail(smtp_sink, 2, timeout=30)
        assert sorted(a.rcpt_tos[0] for a in acks) == ["a@example.com", "b@example.com"]
        # The auto-reply gets no acknowledgement to wait for: wait until all three are filed.
        async def three() -> list:
            found = await submissions(service.runtime)
            return found if len(found) == 3 else []

        subs = {s.from_addr: s for s in await until(three, timeout=30, what="three letters filed")}
        assert set(subs) == {"a@example.com", "b@example.com", "away@example.com"}
        assert subs["away@example.com"].auto == "auto-reply"
        assert subs["a@example.com"].category not in (None, "unclassified")
        for ack in acks:  # the acknowledgement drafted in the process names the filed number
            msg = BytesParser(policy=policy.default).parsebytes(ack.content)
            assert subs[ack.rcpt_tos[0]].tracking_no in msg["Subject"]
            assert subs[ack.rcpt_tos[0]].tracking_no in msg.get_body(("plain",)).get_content()
    finally:
        await service.stop()
    # the prepare process stops with the service, and is reaped
    assert not prepare_processes() and stray_helpers() <= helpers_before


async def test_a_killed_worker_process_loses_nothing(db_url, tmp_path: Path,
                                                     smtp_sink: SmtpSink):
    service, maildir = await started(db_url, tmp_path, smtp_sink)
    try:
        victim = await pool_process()
        os.kill(victim, signal.SIGKILL)
        await until(lambda: _dead(victim), what="the process gone")
        for n in range(3):
            drop(maildir, f"{n}.K{n}.host", letter(sender=f"k{n}@example.com"))
        acks = await wait_mail(smtp_sink, 3, timeout=30)
        assert sorted(a.rcpt_tos[0] for a in acks) == [f"k{n}@example.com" for n in range(3)]
        assert len(await submissions(service.runtime)) == 3
        # a new process takes over for the next letters
        drop(maildir, "9.K9.host", letter(sender="later@example.com"))
        await wait_mail(smtp_sink, 4, timeout=30)
        replacement = await pool_process()
        assert replacement != victim
    finally:
        await service.stop()


async def _is_dir(path: Path) -> bool:
    return path.is_dir()


async def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (the service reaps it when it next uses it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


PREPARE_ALONE = r"""
import pickle, sys
from datetime import UTC, datetime
from bot.workers import preparer
from handlers.step import Intake
settings, letters = pickle.loads(sys.stdin.buffer.read())
preparer._start_process(settings, b"secret")
preparer._warm()
done = preparer._prepare_here([Intake(raw_id=i, channel="email", received_at=datetime.now(UTC),
                                      raw=raw) for i, raw in enumerate(letters)])
print(sorted(i.tracking_no is not None and i.ahead.ack_draft is not None for i in done))
print(sorted(m for m in ("sqlalchemy", "sklearn", "scipy", "alembic") if m in sys.modules))
"""


def test_a_prepare_process_never_loads_the_database_layer(tmp_path: Path):
    """What a prepare process runs (its module, start, warm-up, a batch of letters) drafts
    every letter's acknowledgement without SQLAlchemy, Alembic or scikit-learn: each would be
    memory that ``serve`` carries twice."""
    import pickle
    import subprocess
    import sys

    settings = make_settings("sqlite+aiosqlite:///" + str(tmp_path / "x.db"), tmp_path)
    letters = [letter(sender=f"p{n}@example.com") for n in range(3)]
    out = subprocess.run([sys.executable, "-c", PREPARE_ALONE], input=pickle.dumps(
        (settings, letters)), capture_output=True, check=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2]).stdout.decode().splitlines()
    assert out == ["[True, True, True]", "[]"]
