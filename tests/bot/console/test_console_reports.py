"""Reports of misconduct: reviewers see that one exists, never its content — on the page, in
files, in exports and in the API; every supervisor view is in the audit log."""

from __future__ import annotations

import csv
import io

import aiohttp
from openpyxl import load_workbook

from bot.app import Service
from storage import events, users
from tests.bot.console.support import Staff, file_letter, login

SECRET = "举报某局干部张某收受红包二十万元"


async def _report(service: Service) -> int:
    return await file_letter(service, SECRET, subject="实名举报", email="jb@example.com",
                             name="匿名群众", kind="report")


async def _views(service: Service, sid: int) -> list:
    async with service.runtime.sessions() as db:
        return [e for e in await events.for_submission(db, sid) if e.action == "report-viewed"]


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
    assert len(await _views(service, sid)) == 2


async def test_api_needs_a_token_and_hides_reports_from_reviewers(
        service: Service, reviewer: Staff, supervisor: Staff):
    sid = await _report(service)
    other = await file_letter(service, "公交站台破损，下雨没有地方躲。", subject="=HYPERLINK(1)")
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
