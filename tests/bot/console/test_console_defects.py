"""What the intake could not read, or had to guess, is on the letter's page: staff read a
garbled or partial letter knowing it is one, and check it against the raw mail. A reviewer sees
nothing of it on a 举报."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from bot.app import Service
from bot.sources.mailstore import store_mail
from storage import review_list as queue
from storage.models import Submission
from tests.bot.console.support import Staff, login
from tests.bot.helpers import filed

# A mailer that puts two mailboxes in From (the first empty) and junk after base64's padding.
BROKEN = (b'From: "Yangzhou ABC " <>, "LTD" <wanglei.nt@163.com>\r\n'
          b"To: ntzfwjgdw@163.com\r\n"
          b"Subject: =?utf-8?b?5oi35Y+j5Yqe55CG5aSq5oWi?=\r\n"
          b"Message-ID: <1a2b3c.5d6e@163.com>\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\n"
          b"5rS+5Ye65omA5Yqe5oi35Y+j5aSq5oWi5LqG77yM6LeR5LqG5LiJ6Laf6L+Y5rKh5Yqe5aW977yM56qX5Y+j6K+057O757uf5Y2H57qn77yM6K+3552j5L+D5pS56L+b44CC\r\n"
          b"==junk!!\r\n")


async def _file(service: Service) -> Submission:
    async with service.runtime.sessions.begin() as db:
        await store_mail(db, source_key="test:broken", raw=BROKEN)
    await filed(service)
    async with service.runtime.sessions() as db:
        sub = await db.scalar(select(Submission).where(
            Submission.from_addr == "wanglei.nt@163.com"))
    assert sub is not None
    return sub


async def _page(client: aiohttp.ClientSession, service: Service, staff: Staff, sid: int) -> str:
    await login(client, service.base_url, staff.name)
    async with client.get(f"{service.base_url}/console/s/{sid}") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_letter_page_lists_what_the_intake_lost_or_guessed(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    sub = await _file(service)
    page = await _page(client, service, reviewer, sub.id)
    assert 'id="defects"' in page and "请对照原始邮件核实" in page
    assert "多余内容" in page  # the base64 tail
    assert "首个地址不可用" in page  # the sender was picked from several
    assert "派出所办户口太慢了" in page  # and the letter itself still reads


async def test_a_reviewer_sees_no_defects_of_a_report(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    sub = await _file(service)
    async with service.runtime.sessions.begin() as db:
        await queue.update_fields(db, sub.id, restricted=True, restricted_by="staff")
    page = await _page(client, service, reviewer, sub.id)
    assert 'id="restricted"' in page and 'id="defects"' not in page
    assert "多余内容" not in page
