"""Staff record a phone call: stored like a form letter, filed once by the intake worker under
their name, its tracking number and query code shown once to be read out to the caller."""

from __future__ import annotations

import re

import aiohttp

from bot.app import Service
from storage import events
from storage import review_list as queue
from testing.smtp import SmtpSink
from tests.bot.citizen.steps import mail_query_code
from tests.bot.console.support import Staff, csrf_of, entered, login
from tests.bot.helpers import tracking_no, wait_mail

CODE = re.compile(r'id="query-code">(\d{6})<')


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
        assert resp.status == 200
        first = await resp.text()
    async with client.post(f"{base}/console/new", data=form, allow_redirects=False) as resp:
        again = await resp.text()
    assert tracking_no(again) == tracking_no(first)  # a double click files one letter
    code = CODE.search(first)
    assert code, "the query code is shown, to be read out to the caller"
    sid = await entered(service, first)
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
        history = await events.for_submission(db, sid)
    assert sub is not None and sub.channel == "phone" and sub.from_name == "赵先生"
    assert ("received", reviewer.name) in [(e.action, e.actor) for e in history]
    [ack] = await wait_mail(smtp_sink, 1, timeout=10)
    assert sub.tracking_no in str(ack.message["Subject"])
    assert mail_query_code(ack.message) == code[1]  # the code read out is the one that works
    async with client.get(f"{base}/console/s/{sid}") as resp:
        assert "来电反映派出所" in await resp.text()
