"""Replies and bounces arriving by IMAP: a reply to our acknowledgement is a follow-up (no second
acknowledgement); a bounce of our acknowledgement marks that outbox row bounced."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import start
from storage.models import Attachment, Outbox
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import (
    CITIZEN,
    append,
    count,
    followups,
    imap_section,
    letter,
    outbox_rows,
    provider_msgid,
    submissions,
    until,
)
from tests.conftest import make_settings

BOUNCE = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: ntzfwjgdw@163.com
Subject: Undelivered Mail Returned to Sender
Date: Wed, 25 Nov 2026 10:00:00 +0800
Message-ID: <bounce.1@mx.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BND"

--BND
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered to one or more recipients.

--BND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {citizen}
Action: failed
Status: 5.1.1

--BND
Content-Type: text/rfc822-headers

From: ntzfwjgdw@163.com
To: {citizen}
Message-ID: <{ack_id}>

--BND--
"""


async def test_reply_is_followup_and_bounce_is_recorded(db_url, tmp_path: Path, imap_account,
                                                        smtp_sink: SmtpSink):
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=imap_section(imap_account))
    service = await start(settings)
    try:
        rt = service.runtime
        # Our mailbox and the citizen at the same provider: both Message-IDs end in @163.com.
        orig_id = provider_msgid(CITIZEN)
        original = letter(sender=CITIZEN, msgid=orig_id)
        await append(imap_account, original)
        [ack] = await wait_mail(smtp_sink, 1)
        ack_id = ack.message["Message-ID"].strip("<>")
        reply = letter(subject="Re: " + str(ack.message["Subject"]), sender=CITIZEN,
                       body="补充一下：坏的是3号楼前面那盏灯。",
                       headers={"In-Reply-To": f"<{ack_id}>",
                                "References": f"{orig_id} <{ack_id}>"})
        bounce = BOUNCE.format(ack_id=ack_id, citizen=CITIZEN).replace("\n", "\r\n").encode()
        await append(imap_account, reply, bounce)
        [fu] = await until(lambda: followups(rt), what="follow-up")
        [sub] = [s for s in await submissions(rt) if s.auto is None]
        assert fu.submission_id == sub.id and "3号楼" in fu.text
        [row] = await until(lambda: _bounced(rt), what="ack marked bounced")
        assert row.message_id == ack_id
        await asyncio.sleep(0.5)
        assert len(smtp_sink.messages) == 1  # neither the reply nor the bounce got an ack
    finally:
        await service.stop()


async def _bounced(rt) -> list[Outbox]:  # type: ignore[no-untyped-def]
    return [r for r in await outbox_rows(rt) if r.state == "bounced"]


async def test_corpus_mail_is_classified_end_to_end(db_url, tmp_path: Path, dovecot,  # type: ignore[no-untyped-def]
                                                    imap_account, smtp_sink: SmtpSink):
    """Real citizen mail from the corpus, through IMAP, parsed, classified and acknowledged."""
    corpus = Path(__file__).parents[2] / "data" / "emails"
    raw = (corpus / "d17_mixed_images_pdf_docx.eml").read_bytes()
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=imap_section(imap_account))
    service = await start(settings)
    try:
        await append(imap_account, raw)
        [ack] = await wait_mail(smtp_sink, 1, timeout=15)
        assert ack.rcpt_tos == ["yangfan_rd@163.com"]
        [sub] = await submissions(service.runtime)
        assert sub.subject == "提交证据材料：被非法拘禁的情况说明"
        assert sub.category in {str(n) for n in range(1, 11)} | {"other"}
        assert sub.model_version and sub.kind in {"complaint", "report", "inquiry", "suggestion"}
        assert await count(service.runtime, Attachment) == 4
    finally:
        await service.stop()
