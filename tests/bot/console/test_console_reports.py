"""Reports of misconduct: reviewers see that one exists, never its content — on the page, in
files, in exports and in the API; every supervisor view is in the audit log."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import Service
from bot.config import Settings
from storage import events, users
from storage import review_list as queue
from storage.models import Event
from testing.smtp import SmtpSink
from tests.bot.console.support import Staff, file_letter, login, page_csrf, post_form
from tests.conftest import make_settings

SECRET = "举报某局干部张某收受红包二十万元"


async def _report(service: Service) -> int:
    return await file_letter(service, SECRET, subject="实名举报", email="jb@example.com",
                             name="匿名群众", kind="report")


async def _views(service: Service, sid: int) -> list:
    async with service.runtime.sessions() as db:
        return [e for e in await events.for_submission(db, sid) if e.action == "report-viewed"]


async def _listed(service: Service) -> list:
    async with service.runtime.sessions() as db:
        return list(await db.scalars(select(Event).where(Event.action == "reports-listed")
                                     .order_by(Event.id)))


async def _tracking_no(service: Service, sid: int) -> str:
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
    assert sub is not None
    return sub.tracking_no


async def test_reviewer_sees_that_a_report_exists_not_its_content(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    sid = await _report(service)
    base = service.base_url
    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console") as resp:
        page = await resp.text()
    assert "举报" in page and SECRET not in page and "实名举报" not in page
    async with client.get(f"{base}/console/s/{sid}") as resp:
        page = await resp.text()
    assert resp.status == 200 and 'id="restricted"' in page
    assert SECRET not in page and "jb@example.com" not in page and "匿名群众" not in page
    async with client.get(f"{base}/console/s/{sid}/raw", allow_redirects=False) as resp:
        assert resp.status == 403
    async with client.get(f"{base}/console/export.csv") as resp:
        exported = (await resp.read()).decode("utf-8-sig")
    async with client.get(f"{base}/console/export.xlsx") as resp:
        ws = load_workbook(io.BytesIO(await resp.read())).active
    exported += " ".join(str(c.value) for row in ws.iter_rows() for c in row)
    assert exported.count("举报内容仅主管") == 2  # the row is there, once per format
    assert SECRET not in exported and "jb@example.com" not in exported
    async with client.get(f"{base}/console?q=红包") as resp:
        assert 'id="empty"' in await resp.text()  # search does not reveal report content
    assert await _views(service, sid) == []


async def test_supervisor_view_of_a_report_is_audited(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    sid = await _report(service)
    base = service.base_url
    await login(client, base, supervisor.name)
    async with client.get(f"{base}/console/s/{sid}") as resp:
        page = await resp.text()
    assert SECRET in page and "jb@example.com" in page
    views = await _views(service, sid)
    assert [(e.actor, e.detail["what"]) for e in views] == [(supervisor.name, "page")]
    async with client.get(f"{base}/console/export.csv") as resp:
        rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert rows[0][0] == "编号" and any(SECRET in cell for row in rows for cell in row)
    assert len(await _views(service, sid)) == 1  # the export is one event of its own:
    [listed] = await _listed(service)
    assert (listed.actor, listed.detail["what"], listed.detail["letters"]) == (
        supervisor.name, "export", [await _tracking_no(service, sid)])


async def test_api_needs_a_token_and_hides_reports_from_reviewers(
        service: Service, reviewer: Staff, supervisor: Staff):
    sid = await _report(service)
    other = await file_letter(service, "公交站台破损，下雨没有地方躲。", subject="=HYPERLINK(1)",
                              restricted=False)
    async with service.runtime.sessions.begin() as db:
        r_token = await users.issue_token(db, reviewer.name)
        s_token = await users.issue_token(db, supervisor.name)
    base = f"{service.base_url}/api/v1/submissions"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as resp:
            assert resp.status == 401
        async with http.get(base, headers={"Authorization": f"Bearer {r_token}x"}) as resp:
            assert resp.status == 401
        r_head = {"Authorization": f"Bearer {r_token}"}
        async with http.get(base, headers=r_head) as resp:
            listing = await resp.json()
        assert {i["id"] for i in listing["items"]} == {sid, other}
        assert SECRET not in str(listing)
        async with http.get(f"{base}/{sid}", headers=r_head) as resp:
            one = await resp.json()
        assert one["restricted"] is True and "text" not in one
        async with http.get(f"{base}/{other}", headers=r_head) as resp:
            assert "公交站台" in (await resp.json())["text"]
        s_head = {"Authorization": f"Bearer {s_token}"}
        async with http.get(f"{base}/{sid}", headers=s_head) as resp:
            assert (await resp.json())["text"] == SECRET
    assert [e.detail["what"] for e in await _views(service, sid)] == ["api"]


async def test_export_neutralises_formulas(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    await file_letter(service, "=cmd|' /C calc'!A0 请处理噪音扰民问题", subject="@SUM(1)")
    await login(client, service.base_url, supervisor.name)
    async with client.get(f"{service.base_url}/console/export.csv?view=all") as resp:
        text = (await resp.read()).decode("utf-8-sig")
    assert "'=cmd" in text and "'@SUM(1)" in text
    async with client.get(f"{service.base_url}/console/export.xlsx?view=all") as resp:
        wb = load_workbook(io.BytesIO(await resp.read()))
    ws = wb.active
    cells = [c for row in ws.iter_rows() for c in row if str(c.value).startswith("=cmd")]
    assert cells and all(c.data_type == "s" for c in cells)  # stored as text, not a formula


# What a supervisor writes about a report names the reporter and the accused.
REASON = "转纪委：举报人陈小红(139-1234-5678)反映副所长刘德胜受贿"
UNIT = "区纪委监委第三室（刘德胜案）"
NOTE = "已电话联系陈小红核实，她担心被报复"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    """The service of these tests forwards to a unit whose configured name is itself telling."""
    return make_settings(db_url, tmp_path, smtp_sink, casework={"units": ["法院", UNIT]})


async def test_reviewer_sees_nothing_staff_wrote_on_a_report(
        service: Service, reviewer: Staff, supervisor: Staff, client: aiohttp.ClientSession):
    sid = await _report(service)
    base = service.base_url
    await login(client, base, supervisor.name)
    url = f"{base}/console/s/{sid}"
    assert (await post_form(client, f"{url}/note",
                            {"csrf": await page_csrf(client, url), "text": NOTE}))[0] == 302
    assert (await post_form(client, f"{url}/status", {
        "csrf": await page_csrf(client, url), "current": "new", "to": "forwarded",
        "reason": REASON, "unit": UNIT, "due": str(date.today() + timedelta(days=7))}))[0] == 302
    async with client.get(url) as resp:
        page = await resp.text()
    assert REASON in page and UNIT in page and NOTE in page and "查看举报内容" in page

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await login(other, base, reviewer.name)
        async with other.get(url) as resp:
            page = await resp.text()
        assert resp.status == 200 and 'id="restricted"' in page
        assert "转办" in page  # where the case stands is not secret
        for secret in ("陈小红", "刘德胜", "纪委", "139-1234-5678", NOTE, "查看举报内容"):
            assert secret not in page, secret
        async with other.get(f"{base}/console/export.csv") as resp:
            rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
        unit_col = rows[0].index("转办单位")
        assert [r[unit_col] for r in rows[1:]] == [""]
        async with other.get(f"{base}/console/export.xlsx") as resp:
            ws = load_workbook(io.BytesIO(await resp.read())).active
        assert "刘德胜" not in " ".join(str(c.value) for row in ws.iter_rows() for c in row)


async def test_supervisor_views_of_reports_in_lists_are_audited_once_each(
        service: Service, supervisor: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    sid = await _report(service)
    other = await file_letter(service, "公交站台破损，下雨没有地方躲。", subject="站台",
                              restricted=False)
    tn = await _tracking_no(service, sid)
    base = service.base_url
    await login(client, base, supervisor.name)
    async with client.get(f"{base}/console") as resp:
        assert SECRET[:8] in await resp.text()
    async with client.get(f"{base}/console?q=红包") as resp:
        assert tn in await resp.text()
    async with client.get(f"{base}/console?q=站台") as resp:  # no report shown: nothing to log
        assert "站台" in await resp.text()
    async with client.get(f"{base}/console/export.xlsx") as resp:
        assert resp.status == 200
    async with service.runtime.sessions.begin() as db:
        token = await users.issue_token(db, supervisor.name)
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/submissions",
                        headers={"Authorization": f"Bearer {token}"}) as resp:
        assert SECRET in str(await resp.json())
    listed = await _listed(service)
    assert [(e.actor, e.detail["what"], e.detail["letters"], e.detail.get("q")) for e in listed] \
        == [(supervisor.name, "list", [tn], None), (supervisor.name, "search", [tn], "红包"),
            (supervisor.name, "export", [tn], None), (supervisor.name, "api", [tn], None)]
    assert all(e.submission_id is None for e in listed)
    assert other not in {e.submission_id for e in listed}
    # The audit page names the viewer and the letter.
    async with client.get(f"{base}/console/audit?action=reports-listed") as resp:
        page = await resp.text()
    assert page.count(tn) == 4 and "搜索词：红包" in page
    # A reviewer's list shows no report content, so it writes nothing.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as rv:
        await login(rv, base, reviewer.name)
        async with rv.get(f"{base}/console") as resp:
            assert resp.status == 200
    assert len(await _listed(service)) == 4
