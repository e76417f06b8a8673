"""Signing in, and that nothing in the console or the API answers without it."""

from __future__ import annotations

import re

import aiohttp
from aiohttp import web

from bot.app import Service
from bot.web.console.throttle import LoginThrottle
from storage import audit, events, users
from storage import review_list as queue
from tests.bot.console.support import PASSWORD, Staff, file_letter, login, page_csrf


def _console_routes(service: Service) -> list[tuple[str, str]]:
    app: web.Application = service.runner.app  # type: ignore[assignment]
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD":
            continue
        if path.startswith(("/console", "/api/v1/")):
            out.append((route.method, path))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_console_and_api_route_needs_a_session(service: Service, reviewer: Staff):
    await file_letter(service, "路灯坏了三个月没人修，晚上走路很危险。")
    routes = _console_routes(service)
    # The walk must actually cover the console: list, one submission, actions, export, API.
    paths = {p for _m, p in routes}
    assert {"/console", "/console/s/{id}", "/console/export.csv", "/api/v1/submissions"} <= paths
    assert len(routes) >= 12
    async with aiohttp.ClientSession() as http:
        for method, path in routes:
            url = service.base_url + _concrete(path)
            async with http.request(method, url, allow_redirects=False) as resp:
                if path == "/console/login":
                    assert resp.status in (200, 403), (method, path, resp.status)
                elif path.startswith("/api/v1/"):
                    assert resp.status == 401, (method, path, resp.status)
                else:
                    assert resp.status == 302, (method, path, resp.status)
                    assert resp.headers["Location"].startswith("/console/login"), path
            # a forged cookie does not help either
            async with http.request(method, url, allow_redirects=False,
                                    headers={"Cookie": "feedback_console=forged",
                                             "Authorization": "Bearer fbk_forged"}) as resp:
                if path != "/console/login":
                    assert resp.status in (302, 401), (method, path, resp.status)


async def test_login_starts_a_new_session_and_logout_ends_it(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    async with client.get(f"{base}/console/login") as resp:
        await resp.read()
    before = {c.key: c.value for c in client.cookie_jar}["feedback_console"]
    resp = await login(client, base, reviewer.name)
    assert resp.status == 302 and resp.headers["Location"] == "/console"
    cookie = resp.cookies["feedback_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie.value != before  # a fresh session, not the pre-login one (no fixation)
    async with client.get(f"{base}/console") as resp:
        assert resp.status == 200 and "reviewer1" in await resp.text()
    token = await page_csrf(client, f"{base}/console")
    async with client.post(f"{base}/console/logout", data={"csrf": token}) as resp:
        assert resp.url.path == "/console/login"
    async with client.get(f"{base}/console", allow_redirects=False) as resp:
        assert resp.status == 302


async def test_old_cookie_stops_working_after_disable_or_new_password(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console", allow_redirects=False) as resp:
        assert resp.status == 200
    async with service.runtime.sessions.begin() as db:
        await users.set_password(db, reviewer.name, "another long password")
    async with client.get(f"{base}/console", allow_redirects=False) as resp:
        assert resp.status == 302
    await login(client, base, reviewer.name, "another long password")
    async with service.runtime.sessions.begin() as db:
        await users.set_disabled(db, reviewer.name)
    async with client.get(f"{base}/console", allow_redirects=False) as resp:
        assert resp.status == 302
    resp = await login(client, base, reviewer.name, "another long password")
    assert resp.status == 401


async def test_post_without_or_with_wrong_csrf_token_changes_nothing(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    sid = await file_letter(service, "小区门口违章停车严重，消防通道被堵。")
    base = service.base_url
    await login(client, base, reviewer.name)
    good = await page_csrf(client, f"{base}/console/s/{sid}")
    attempts = [{}, {"csrf": "wrong"}, {"csrf": good + "x"}]
    for extra in attempts:
        data = {"current": "new", "to": "accepted", **extra}
        async with client.post(f"{base}/console/s/{sid}/status", data=data,
                               allow_redirects=False) as resp:
            assert resp.status == 403
    # the right token from another site's page is refused too (Origin check)
    async with client.post(f"{base}/console/s/{sid}/status", allow_redirects=False,
                           data={"current": "new", "to": "accepted", "csrf": good},
                           headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
        history = await events.for_submission(db, sid)
    assert sub is not None and sub.status == "new"
    assert [e.action for e in history if e.actor == reviewer.name] == []
    async with client.post(f"{base}/console/s/{sid}/status", allow_redirects=False,
                           data={"current": "new", "to": "accepted", "csrf": good}) as resp:
        assert resp.status == 302
    async with service.runtime.sessions() as db:
        assert (await queue.get(db, sid)).status == "accepted"  # type: ignore[union-attr]


async def test_login_locks_after_five_failures_and_logs_them(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    for _ in range(5):
        resp = await login(client, base, reviewer.name, "wrong password")
        assert resp.status == 401
    resp = await login(client, base, reviewer.name, PASSWORD)  # right password, but locked
    assert resp.status == 429
    async with client.get(f"{base}/console", allow_redirects=False) as r:
        assert r.status == 302
    # other names from the same address are slowed too once the address has had its allowance
    allowance = LoginThrottle().free_per_address
    statuses = [(await login(client, base, f"nobody{i}", PASSWORD)).status
                for i in range(allowance - 5 + 1)]
    assert statuses == [401] * (allowance - 5) + [429]
    async with service.runtime.sessions() as db:
        failed = await audit.recent(db, actions=("login-failed",))
    assert len(failed) == allowance
    assert sum(e.actor == reviewer.name for e in failed) == 5


def test_throttle_refusal_grows_by_name_and_address_and_success_clears_it():
    now = [1000.0]
    t = LoginThrottle(free=5, free_per_address=100, base_seconds=2, cap_seconds=60,
                      clock=lambda: now[0])
    assert [t.begin("a", "1").refused_for for _ in range(5)] == [0] * 5
    assert t.begin("a", "1").refused_for == 2
    assert t.begin("A", "2").refused_for == 0  # the same name at another address: no refusal
    waits = [2.0]
    for _ in range(5):  # each attempt after a wait has passed doubles the next wait
        now[0] += waits[-1]
        assert t.begin("a", "1").refused_for == 0
        waits.append(t.begin("a", "1").refused_for)
    assert waits == [2, 4, 8, 16, 32, 60]  # capped
    now[0] += 60
    ok = t.begin("a", "1")
    assert ok.refused_for == 0
    t.succeeded(ok)
    assert [t.begin("a", "1").refused_for for _ in range(5)] == [0] * 5


def test_throttle_slows_a_name_guessed_from_many_addresses_but_never_refuses_it():
    t = LoginThrottle(free=5, free_per_name=10, name_base_seconds=0.5, name_delay_cap=8,
                      clock=lambda: 1000.0)
    attempts = [t.begin("admin", f"10.0.0.{i % 5}") for i in range(15)]
    assert [a.refused_for for a in attempts] == [0] * 15
    assert [a.delay for a in attempts] == [0] * 10 + [0.5, 1, 2, 4, 8]
    owner = t.begin("admin", "192.0.2.1")
    assert owner.refused_for == 0 and owner.delay == 8
