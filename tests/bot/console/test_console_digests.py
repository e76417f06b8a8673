"""Past digests in the console: listed, each shown as sent, and only to signed-in staff."""

from __future__ import annotations

import aiohttp

from bot.app import Service
from storage import digests
from tests.bot.console.support import Staff, login


async def test_digests_are_listed_and_shown(service: Service, reviewer: Staff,
                                            client: aiohttp.ClientSession):
    async with service.runtime.sessions.begin() as db:
        await digests.record_run(db, "2026-W47", {"total": 12},
                                 "<html><body><h1>第47周简报</h1></body></html>", [])
    base = service.base_url
    async with client.get(f"{base}/console/digests/2026-W47", allow_redirects=False) as r:
        assert r.status in (302, 303) and "/console/login" in r.headers["Location"]
    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console/digests") as r:
        html = await r.text()
    assert r.status == 200 and "2026-W47" in html and "每周简报" in html
    async with client.get(f"{base}/console/digests/2026-W47") as r:
        assert r.status == 200 and "第47周简报" in await r.text()
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    async with client.get(f"{base}/console/digests/2026-W01") as r:
        assert r.status == 404


async def test_any_period_shows_the_digest_figures_and_no_report(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    """The from/to picker: the period's 三率, 按期 and overdue cases, a clear 400 for a bad
    day, and to a reviewer a 举报 only as a number."""
    from datetime import UTC, datetime, timedelta

    from storage import review_list
    from tests.bot.console.support import file_letter

    base = service.base_url
    ordinary = await file_letter(service, "小区门口的路灯坏了三个月，晚上出行很不安全，请协调修理。")
    secret = "派出所副所长收受红包后插手我家的案件"
    report = await file_letter(service, secret + "，请纪委核查。", kind="report")
    old = datetime.now(UTC) - timedelta(days=20)
    async with service.runtime.sessions.begin() as db:
        # Both received 20 days ago and still undecided: overdue for acceptance (due 5 days ago).
        for sid in (ordinary, report):
            await review_list.update_fields(db, sid, received_at=old)
    await login(client, base, reviewer.name)
    day = (datetime.now(UTC) + timedelta(hours=8)).date()
    async with client.get(f"{base}/console/digests",
                          params={"from": str(day - timedelta(days=30)), "to": str(day)}) as r:
        html = await r.text()
    assert r.status == 200
    for name in ("响应率", "办结率", "满意率", "按期受理率", "按期办结率"):
        assert name in html
    assert "超过15日未受理 2 件" in html and "其中举报 1 件" in html
    async with service.runtime.sessions() as db:
        from storage.models import Submission
        tns = {sid: (await db.get(Submission, sid)).tracking_no for sid in (ordinary, report)}
    assert tns[ordinary] in html  # listed by number
    assert tns[report] not in html and secret not in html  # counted, never named or quoted
    async with client.get(f"{base}/console/digests", params={"from": "2026-02-30"}) as r:
        assert r.status == 400 and "开始日期" in await r.text()
    async with client.get(f"{base}/console/digests",
                          params={"from": "2026-03-02", "to": "2026-03-01"}) as r:
        assert r.status == 400 and "不能早于" in await r.text()
