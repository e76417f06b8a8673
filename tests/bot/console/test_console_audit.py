"""The audit log page: supervisors see who did what (report views and failed sign-ins
included), can filter it and page back; reviewers cannot open it."""

from __future__ import annotations

import aiohttp

from bot.app import Service
from tests.bot.console.support import Staff, file_letter, login


async def _page(client: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with client.get(url) as resp:
        return resp.status, await resp.text()


async def test_supervisor_reads_the_log_and_filters_it(
        service: Service, supervisor: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    sid = await file_letter(service, "举报某所长吃拿卡要", subject="实名举报", kind="report")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        resp = await login(other, base, reviewer.name, password="wrong password")
        assert resp.status != 302  # refused
    await login(client, base, supervisor.name)
    status, page = await _page(client, f"{base}/console/s/{sid}")
    assert status == 200
    status, page = await _page(client, f"{base}/console/audit")
    assert status == 200 and "审计日志" in page
    assert "查看举报内容" in page and f'href="/console/s/{sid}"' in page
    assert "登录失败" in page and reviewer.name in page
    status, page = await _page(client, f"{base}/console/audit?action=report-viewed")
    assert "查看举报内容" in page and "登录失败</td>" not in page
    status, page = await _page(client, f"{base}/console/audit?actor={reviewer.name}")
    assert "登录失败" in page and "查看举报内容</td>" not in page
    status, page = await _page(client, f"{base}/console/audit?from=2001-01-01&to=2001-01-31")
    assert "没有符合条件的记录" in page
    status, page = await _page(client, f"{base}/console/audit?from=garbage")
    assert status == 400 and "起始日期" in page and "2026-03-01" in page  # says what to fix
    status, page = await _page(client, f"{base}/console/audit?action=garbage")
    assert status == 200 and "查看举报内容" in page  # an unknown choice widens, never fails


async def test_log_pages_back_without_repeating_a_line(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    from bot.web.console import audit as audit_page
    from storage import events

    async with service.runtime.sessions.begin() as db:
        for i in range(audit_page.PAGE + 5):
            await events.record(db, None, f"tester{i:03d}", "login", {"ip": "127.0.0.1"})
    await login(client, service.base_url, supervisor.name)
    status, first = await _page(client, f"{service.base_url}/console/audit?action=login")
    assert 'id="next-page"' in first
    more = first.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0]
    status, second = await _page(client, service.base_url + more.replace("&amp;", "&"))
    firsts = {f"tester{i:03d}" for i in range(audit_page.PAGE + 5) if f"tester{i:03d}<" in first}
    seconds = {f"tester{i:03d}" for i in range(audit_page.PAGE + 5) if f"tester{i:03d}<" in second}
    assert first.count("<tr>") - 1 == audit_page.PAGE  # a full page (header row aside)
    assert not firsts & seconds
    assert len(firsts | seconds) == audit_page.PAGE + 5


async def test_reviewer_cannot_open_the_log(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    await login(client, service.base_url, reviewer.name)
    status, page = await _page(client, f"{service.base_url}/console/audit")
    assert status == 403
    status, page = await _page(client, f"{service.base_url}/console")
    assert 'href="/console/audit"' not in page
