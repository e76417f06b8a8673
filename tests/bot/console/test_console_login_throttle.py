"""Login throttling under load: attempts counted before any await, argon2 off the event loop,
and no lock-out of an account's owner by a stranger at another address.

Client addresses differ through X-Forwarded-For from a trusted proxy (127.0.0.1), as behind the
commission's reverse proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.app import Service, start
from bot.web.console.auth import THROTTLE
from bot.web.console.throttle import LoginThrottle
from storage import audit
from testing.smtp import SmtpSink
from tests.bot.console.support import PASSWORD, Staff, add_user, csrf_of
from tests.conftest import make_settings


@pytest.fixture
async def proxied(db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> AsyncIterator[Service]:
    svc = await start(make_settings(db_url, tmp_path, smtp_sink,
                                    web={"trusted_proxies": ["127.0.0.1"]}))
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def owner(proxied: Service) -> Staff:
    return await add_user(proxied, "admin1", "admin")


class Browser:
    """One browser at one address: its own cookies (session, CSRF token)."""

    def __init__(self, base: str, address: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          headers={"X-Forwarded-For": address})
        self.csrf = ""

    async def open_login(self) -> None:
        async with self.http.get(f"{self.base}/console/login") as resp:
            self.csrf = csrf_of(await resp.text())

    async def submit(self, name: str, password: str) -> int:
        async with self.http.post(f"{self.base}/console/login", allow_redirects=False,
                                  data={"csrf": self.csrf, "name": name,
                                        "password": password}) as resp:
            await resp.read()
            return resp.status

    async def login(self, name: str, password: str) -> int:
        await self.open_login()
        return await self.submit(name, password)

    async def close(self) -> None:
        await self.http.close()


async def _browsers(base: str, addresses: list[str]) -> list[Browser]:
    browsers = [Browser(base, a) for a in addresses]
    await asyncio.gather(*(b.open_login() for b in browsers))
    return browsers


async def _checked(service: Service) -> int:
    """How many passwords were checked and found wrong (each is audited as login-failed)."""
    async with service.runtime.sessions() as db:
        return len(await audit.recent(db, actions=("login-failed",), limit=1000))


async def test_thirty_parallel_wrong_logins_check_at_most_the_allowance(
        proxied: Service, owner: Staff):
    browsers = await _browsers(proxied.base_url, ["203.0.113.7"] * 30)
    try:
        statuses = await asyncio.gather(*(b.submit(owner.name, f"guess {i:02}")
                                          for i, b in enumerate(browsers)))
    finally:
        for b in browsers:
            await b.close()
    allowance = LoginThrottle().free
    assert sorted(statuses) == [401] * allowance + [429] * (30 - allowance)
    assert await _checked(proxied) == allowance


async def test_owner_signs_in_from_another_address_after_a_strangers_failures(
        proxied: Service, owner: Staff):
    throttle = proxied.runner.app[THROTTLE]  # type: ignore[union-attr]
    # Keep the test short: the name's slow-down starts at 10 ms instead of half a second and
    # stops growing at 50 ms instead of 8 s (the 20 failures past the name's allowance waited
    # a minute at the real cap; the owner's own login still waits the name's delay).
    throttle.name_base_seconds = 0.01
    throttle.name_delay_cap = 0.05
    stranger = Browser(proxied.base_url, "198.51.100.9")
    others = [Browser(proxied.base_url, f"198.51.100.{20 + i}") for i in range(4)]
    me = Browser(proxied.base_url, "192.0.2.44")
    try:
        for i in range(throttle.free + 3):
            assert await stranger.login(owner.name, f"guess {i}") in (401, 429)
        assert await stranger.login(owner.name, PASSWORD) == 429  # that address is locked
        for i, other in enumerate(others):  # the name alone, from many addresses
            for j in range(throttle.free):
                assert await other.login(owner.name, f"guess {i}-{j}") == 401
        assert await me.login(owner.name, PASSWORD) == 302
        async with me.http.get(f"{proxied.base_url}/console", allow_redirects=False) as resp:
            assert resp.status == 200
    finally:
        for b in (stranger, me, *others):
            await b.close()


async def test_healthz_answers_while_parallel_logins_are_checked(proxied: Service, owner: Staff):
    n = 10
    browsers = await _browsers(proxied.base_url, [f"203.0.113.{i}" for i in range(n)])
    finished: list[str] = []

    async def login(b: Browser, i: int) -> None:
        await b.submit(owner.name, f"wrong {i}")
        finished.append("login")

    try:
        logins = [asyncio.create_task(login(b, i)) for i, b in enumerate(browsers)]
        # Wait until the server has answered one login: the others are being checked now.
        await asyncio.wait(logins, return_when=asyncio.FIRST_COMPLETED)
        before = len(finished)
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                async with http.get(f"{proxied.base_url}/healthz") as resp:
                    assert resp.status == 200
        during = len(finished) - before
        await asyncio.gather(*logins)
    finally:
        for b in browsers:
            await b.close()
    assert before < n - 3  # the logins were still being checked while /healthz was asked
    # Three /healthz answers did not wait for password checks: at most one login (checked in
    # another thread meanwhile) finished while they were asked.
    assert during <= 1, (before, during)
