"""A citizen's letter wrongly filed as machine mail is brought back by staff: giving it a
category takes it out of 自动邮件 into the queue, and the citizen gets the acknowledgement the
intake held back."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from bot.app import Service
from bot.sources.mailstore import store_mail
from handlers import tracking
from storage import events
from storage.models import Submission
from testing.smtp import SmtpSink
from tests.bot.console.support import Staff, login, page_csrf, post_form
from tests.bot.helpers import filed, wait_mail
from tests.bot.sources.mailtools import letter

CITIZEN = "lisi.nantong@163.com"


async def _auto_filed(service: Service) -> Submission:
    """A citizen's letter forwarded by a hotline system that marks everything it sends
    ``Auto-Submitted``: loop_guard rightly files it as machine mail, unacknowledged."""
    raw = letter(subject="反映小区消防通道被占用", sender=CITIZEN,
                 body="我们小区的消防通道长期被车辆占用，物业不管，派出所也没来处理，请督促整改。",
                 headers={"Auto-Submitted": "auto-generated"})
    async with service.runtime.sessions.begin() as db:
        await store_mail(db, source_key="test:hotline", raw=raw)
    await filed(service)
    async with service.runtime.sessions() as db:
        sub = await db.scalar(select(Submission).where(Submission.from_addr == CITIZEN))
    assert sub is not None and sub.auto == "auto-reply"
    return sub


async def _queue(client: aiohttp.ClientSession, base: str, view: str = "") -> str:
    async with client.get(f"{base}/console{'?view=' + view if view else ''}") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_reclassifying_machine_mail_files_and_acknowledges_it(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession,
        smtp_sink: SmtpSink):
    sub = await _auto_filed(service)
    base = service.base_url
    await login(client, base, supervisor.name)
    assert sub.tracking_no not in await _queue(client, base)
    assert sub.tracking_no in await _queue(client, base, "auto")
    assert smtp_sink.messages == []

    csrf = await page_csrf(client, f"{base}/console/s/{sub.id}")
    status, _, location = await post_form(client, f"{base}/console/s/{sub.id}/classify",
                                          {"csrf": csrf, "category": "1", "measure": "",
                                           "kind": "complaint"})
    assert status == 302 and location.endswith(f"/console/s/{sub.id}")
    async with client.get(f"{base}{location}") as resp:
        page = await resp.text()
    assert "进入待办列表" in page and "受理回执" in page
    assert sub.tracking_no in await _queue(client, base)
    assert sub.tracking_no not in await _queue(client, base, "auto")

    [ack] = await wait_mail(smtp_sink, 1)
    assert ack.rcpt_tos == [CITIZEN]
    assert sub.tracking_no in str(ack.message["Subject"])
    assert ack.message["In-Reply-To"] == f"<{sub.message_id}>"
    assert tracking.verify_message_id(service.runtime.secret,
                                      ack.message["Message-ID"]) == sub.tracking_no
    code = tracking.query_code_for(service.runtime.secret, sub.tracking_no)
    assert code in ack.message.get_body(("plain",)).get_content()
    async with service.runtime.sessions() as db:
        actions = [e.action for e in await events.for_submission(db, sub.id)]
    assert "not-auto" in actions and "ack-queued" in actions


async def test_marking_machine_mail_as_spam_keeps_it_out_and_silent(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession,
        smtp_sink: SmtpSink):
    sub = await _auto_filed(service)
    base = service.base_url
    await login(client, base, supervisor.name)
    csrf = await page_csrf(client, f"{base}/console/s/{sub.id}")
    await post_form(client, f"{base}/console/s/{sub.id}/classify",
                    {"csrf": csrf, "category": "spam", "measure": "", "kind": ""})
    async with service.runtime.sessions() as db:
        after = await db.get(Submission, sub.id)
        actions = [e.action for e in await events.for_submission(db, sub.id)]
    assert after is not None and after.auto == "auto-reply" and after.category == "spam"
    assert "ack-queued" not in actions and smtp_sink.messages == []
