"""Retention: `feedback-bot purge` blanks personal data of long-closed submissions, keeps statistics."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from bot.app import Service
from bot.commands.purge import purge
from storage.db import utcnow
from storage.models import Attachment, Event, Followup, Outbox, RawIntake, Submission
from testing.smtp import SmtpSink
from tests.bot.citizen.steps import (
    client,
    lookup,
    png,
    post_on_status,
    resolve,
    submit_letter,
    submit_multipart,
)
from tests.bot.helpers import filed, tracking_no, wait_mail
from tests.conftest import REPO

OLD_LETTER = "三年前反映的问题：某派出所窗口推诿，我叫王某某，电话13800000000。"


async def _age(service: Service, tn: str, days: int) -> None:
    async with service.runtime.sessions.begin() as s:
        await s.execute(update(Submission).where(Submission.tracking_no == tn).values(
            resolved_at=utcnow() - timedelta(days=days), updated_at=utcnow() - timedelta(days=days)))


async def test_purge_blanks_personal_data_and_keeps_statistics(service: Service,
                                                               smtp_sink: SmtpSink):
    shared, own = png(3, 3), png(5, 5)
    async with client() as http:
        status, html = await submit_multipart(
            http, service.base_url, body=OLD_LETTER, name="王某某", email="wang@example.com",
            phone="13800000000", subject="窗口推诿",
            files=[("a.png", shared, "image/png"), ("b.png", own, "image/png")])
        old_tn = tracking_no(html)
        recent_tn, recent_code = await submit_letter(http, service.base_url, email="he@example.com")
        status, _ = await submit_multipart(http, service.base_url, body=OLD_LETTER + "再补充",
                                           files=[("same.png", shared, "image/png")])
        assert status == 200
        open_tn, _ = await submit_letter(http, service.base_url)
        await filed(service)
        await lookup(http, service.base_url, recent_tn, recent_code)
    await wait_mail(smtp_sink, 2)
    await resolve(service, old_tn, reply="答复：已整改。王某某同志，谢谢您。")
    await resolve(service, recent_tn, status="rejected")
    async with service.runtime.sessions.begin() as s:
        old = await s.scalar(select(Submission).where(Submission.tracking_no == old_tn))
        old.satisfaction, old.rating_comment = "满意", "王某某很满意"
        s.add(Followup(submission_id=old.id, channel="web", from_addr="wang@example.com",
                       subject="", text="补充：我的身份证号……", received_at=utcnow()))
        old_id, category = old.id, old.category
    await wait_mail(smtp_sink, 3)
    await _age(service, old_tn, 1100)
    await _age(service, recent_tn, 30)
    await _age(service, open_tn, 2000)  # still open: never purged

    assert await purge(service.runtime.settings, dry_run=True) == (1, 0)
    assert await purge(service.runtime.settings) == (1, 1)  # the shared image stays on disk
    assert await purge(service.runtime.settings) == (0, 0)  # once only

    root = Path(service.runtime.settings.intake.attachments_dir)
    async with service.runtime.sessions() as s:
        old = await s.get(Submission, old_id)
        assert (old.from_name, old.from_addr, old.phone, old.subject, old.text) == (
            None, None, None, "", "")
        assert old.rating_comment is None and old.new_text is None
        assert (old.status, old.satisfaction, old.channel, old.category) == (
            "resolved", "满意", "web", category)
        assert old.received_at is not None and old.resolved_at is not None
        assert [f.text for f in await s.scalars(
            select(Followup).where(Followup.submission_id == old_id))] == [""]
        raws = list(await s.scalars(select(RawIntake).where(RawIntake.submission_id == old_id)))
        assert raws and all(r.raw is None and r.payload is None for r in raws)
        assert not list(await s.scalars(select(Attachment).where(Attachment.submission_id == old_id)))
        mails = list(await s.scalars(select(Outbox).where(Outbox.submission_id == old_id)))
        assert mails and all(m.message == b"" and m.recipient == "" for m in mails)
        assert await s.scalar(select(Event.action).where(
            Event.submission_id == old_id, Event.action == "purged")) == "purged"
        recent = await s.scalar(select(Submission).where(Submission.tracking_no == recent_tn))
        assert recent.from_addr == "he@example.com" and recent.text
        left = {a.sha256 for a in await s.scalars(select(Attachment))}
    files = {p.name for p in root.rglob("*") if p.is_file()}
    assert files == left and len(files) == 1  # the image another letter also carries


async def test_purged_letter_still_shows_its_status(service: Service):
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url)
        await filed(service)
        await resolve(service, tn)
        await _age(service, tn, 2000)
        await purge(service.runtime.settings)
        await lookup(http, service.base_url, tn, code)
        status, html = await post_on_status(http, service.base_url, "/status/rating",
                                            satisfaction="基本满意")
    assert status == 200 and 'id="stage">已办结<' in html and "基本满意" in html


def test_purge_command_line(tmp_path: Path):
    db = tmp_path / "f.db"
    config = tmp_path / "feedback-bot.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n'
                      f'[intake]\nretention_days = 30\nattachments_dir = "{tmp_path}/att"\n'
                      f'[web]\nsecret_key = "x"\n')
    out = subprocess.run([sys.executable, "-m", "bot.cli", "purge", "--config", str(config),
                          "--dry-run"], capture_output=True, text=True, cwd=REPO, check=True)
    assert "0 submissions would be purged (closed more than 30 days ago)" in out.stdout
