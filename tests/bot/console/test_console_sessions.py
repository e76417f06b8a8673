"""Console sessions end on the server: a replayed cookie after sign-out or disable/enable is
refused (a new password: tests/bot/console/test_console_auth.py); and no console page or API
answer is kept in a cache."""

from __future__ import annotations

import aiohttp

from bot.app import Service
from storage import users
from tests.bot.console.support import Staff, file_letter, login, page_csrf

COOKIE = "feedback_console"


def _cookie(http: aiohttp.ClientSession) -> str:
    return {c.key: c.value for c in http.cookie_jar}[COOKIE]


async def _replay(base: str, cookie: str) -> int:
    """GET /console with a copy of an old cookie, as someone who kept it would."""
    async with aiohttp.ClientSession() as other, other.get(
            f"{base}/console", allow_redirects=False,
            headers={"Cookie": f"{COOKIE}={cookie}"}) as resp:
        return resp.status


async def test_replayed_cookie_is_refused_after_sign_out(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    await login(client, base, reviewer.name)
    old = _cookie(client)
    assert await _replay(base, old) == 200
    token = await page_csrf(client, f"{base}/console")
    async with client.post(f"{base}/console/logout", data={"csrf": token},
                           allow_redirects=False) as resp:
        assert resp.status == 302
    assert await _replay(base, old) == 302
    resp = await login(client, base, reviewer.name)  # signing in again works
    assert resp.status == 302 and await _replay(base, _cookie(client)) == 200


async def test_replayed_cookie_is_refused_after_disable_and_enable(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    await login(client, base, reviewer.name)
    old = _cookie(client)
    async with service.runtime.sessions.begin() as db:
        await users.set_disabled(db, reviewer.name)
    async with service.runtime.sessions.begin() as db:
        await users.set_disabled(db, reviewer.name, disabled=False)
    assert await _replay(base, old) == 302


async def test_console_pages_and_api_answers_are_not_stored(
        service: Service, admin: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    sid = await file_letter(service, "派出所门口停车难，希望增加停车位。")
    async with client.get(f"{base}/console/login") as resp:
        assert resp.headers.get("Cache-Control") == "no-store"
    await login(client, base, admin.name)
    for path in ("/console", f"/console/s/{sid}", "/console/audit", "/console/users",
                 "/console/digests", "/console/new", "/console/export.csv"):
        async with client.get(base + path) as resp:
            assert resp.status == 200, path
            assert "no-store" in resp.headers.get("Cache-Control", ""), path
    async with service.runtime.sessions.begin() as db:
        token = await users.issue_token(db, admin.name)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
        for path in ("/api/v1/submissions", f"/api/v1/submissions/{sid}"):
            async with api.get(base + path) as resp:
                assert resp.status == 200 and resp.content_type == "application/json"
                assert resp.headers.get("Cache-Control") == "no-store", path
