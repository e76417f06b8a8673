"""Helpers for the console tests: staff accounts (made through storage.users) and the fixtures
that make them (shared with the casework tests), signing in over HTTP, and submissions filed
through the real pipeline."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from bot.app import Service
from storage import raw_intake, submissions, users
from storage import review_list as queue
from tests.bot.helpers import filed, tracking_no

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Staff:
    name: str
    role: str
    id: int


async def add_user(service: Service, name: str, role: str, password: str = PASSWORD) -> Staff:
    async with service.runtime.sessions.begin() as db:
        user = await users.add(db, name, role, password)
    return Staff(name, role, user.id)


def staff_fixture(role: str, make: Callable[[Service, str, str], Awaitable[Staff]] = add_user,
                  ) -> Callable[[Service], Awaitable[Staff]]:
    """The fixture ``role`` (e.g. ``reviewer``): an account ``<role>1`` on the test's service.
    The console and casework conftests declare their accounts with it; ``make`` says how (the
    casework tests' accounts also get an API token)."""
    @pytest.fixture(name=role)
    async def account(service: Service) -> Staff:
        return await make(service, f"{role}1", role)
    return account


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP session for the console (it keeps cookies for 127.0.0.1)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def login(http: aiohttp.ClientSession, base: str, name: str,
                password: str = PASSWORD) -> aiohttp.ClientResponse:
    async with http.get(f"{base}/console/login") as resp:
        token = csrf_of(await resp.text())
    resp = await http.post(f"{base}/console/login", allow_redirects=False,
                           data={"csrf": token, "name": name, "password": password})
    await resp.read()
    return resp


async def page_csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        assert resp.status == 200
        return csrf_of(await resp.text())


async def file_letter(service: Service, body: str, *, subject: str = "", email: str = "",
                      name: str = "", channel: str = "web", kind: str | None = None,
                      restricted: bool | None = None, phone: str = "") -> int:
    """File a letter through the real pipeline; optionally force its kind (as staff would:
    ``report`` restricts it) or its restriction (as a supervisor would: the classifier's
    decision is tuned for recall and may restrict an ordinary letter). Returns its id."""
    rt = service.runtime
    fields = {"name": name, "email": email, "phone": phone, "subject": subject, "body": body}
    async with rt.sessions.begin() as db:
        raw_id = await raw_intake.add(db, channel=channel, source_key=f"test:{body}:{subject}",
                                      payload={"fields": fields})
    assert raw_id is not None
    # The intake worker files it (calling process_raw here too could race with the worker).
    rt.intake_wakeup.set()
    submission_id = None
    for _ in range(200):
        async with rt.sessions() as db:
            row = await raw_intake.get(db, raw_id)
        if row is not None and row.state == "done":
            submission_id = row.submission_id
            break
        await asyncio.sleep(0.05)
    assert submission_id is not None, "the intake worker did not file the letter"
    if kind is not None:
        async with rt.sessions.begin() as db:
            extra = {"restricted": True, "restricted_by": "staff"} if kind == "report" else {}
            await queue.update_fields(db, submission_id, kind=kind, **extra)
    if restricted is not None:
        async with rt.sessions.begin() as db:
            await queue.update_fields(db, submission_id, restricted=restricted,
                                      restricted_by="staff")
    return submission_id


async def post_form(http: aiohttp.ClientSession, url: str,
                    data: dict[str, str]) -> tuple[int, str, str]:
    """POST a console form without following the redirect: (status, body, Location)."""
    async with http.post(url, data=data, allow_redirects=False) as resp:
        return resp.status, await resp.text(), resp.headers.get("Location", "")


async def entered(service: Service, html: str) -> int:
    """The id of the letter whose tracking number the staff entry page shows, once the intake
    worker has filed it (the page answers as soon as the letter is stored)."""
    await filed(service)
    async with service.runtime.sessions() as db:
        sub = await submissions.by_tracking_no(db, tracking_no(html))
    assert sub is not None, "the intake worker did not file the letter"
    return sub.id
