"""Staff record a phone call: it goes through the pipeline and is filed once, under their name."""

from __future__ import annotations

import re

import aiohttp

from bot.app import Service
from storage import events
from storage import review_list as queue
from testing.smtp import SmtpSink
from tests.bot.console.support import Staff, csrf_of, login
from tests.bot.helpers import wait_mail


async def test_phone_call_is_filed_once_and_acknowledged(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession, smtp_sink: SmtpSink):
    base = service.base_url
    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console/new") as resp:
        page = await resp.text()
    form = {"csrf": csrf_of(page), "nonce": re.search(r'name="nonce" value="([^"]+)"', page)[1],
            "channel": "phone", "name": "赵先生", "email": "zhao@example.com", "phone": "",
            "subject": "来电反映", "body": "来电反映派出所办户口要跑三趟，希望简化手续。"}
    async with client.post(f"{base}/console/new", data=form, allow_redirects=False) as resp:
        assert resp.status == 302
        first = resp.headers["Location"]
    async with client.post(f"{base}/console/new", data=form, allow_redirects=False) as resp:
        assert resp.headers["Location"] == first  # a double click files one letter
    sid = int(first.rsplit("/", 1)[1])
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
        history = await events.for_submission(db, sid)
    assert sub is not None and sub.channel == "phone" and sub.from_name == "赵先生"
    assert ("received", reviewer.name) in [(e.action, e.actor) for e in history]
    [ack] = await wait_mail(smtp_sink, 1, timeout=10)
    assert sub.tracking_no in str(ack.message["Subject"])
    async with client.get(f"{base}{first}") as resp:
        assert "来电反映派出所" in await resp.text()
