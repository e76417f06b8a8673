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
