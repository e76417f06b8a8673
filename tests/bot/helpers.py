"""Helpers for tests that talk to the running service over HTTP."""

from __future__ import annotations

import asyncio
import re

import aiohttp

TOKEN = re.compile(r'name="token" value="([^"]+)"')
TRACKING = re.compile(r'id="tracking-number">([^<]+)<')


async def form_token(http: aiohttp.ClientSession, base_url: str) -> str:
    async with http.get(f"{base_url}/feedback") as resp:
        assert resp.status == 200
        match = TOKEN.search(await resp.text())
    assert match, "the form has no token field"
    return match.group(1)


async def submit(http: aiohttp.ClientSession, base_url: str, token: str | None = None,
                 **fields: str) -> tuple[int, str]:
    token = token or await form_token(http, base_url)
    async with http.post(f"{base_url}/feedback", data={"token": token, **fields}) as resp:
        return resp.status, await resp.text()


def tracking_no(html: str) -> str:
    match = TRACKING.search(html)
    assert match, "no tracking number on the page"
    return match.group(1).strip()


async def wait_mail(sink, n: int = 1, timeout: float = 10.0) -> list:  # type: ignore[no-untyped-def]
    """Wait for ``n`` messages at the SMTP sink without blocking the service's event loop."""
    return await asyncio.to_thread(sink.wait_for, n, timeout)


async def filed(service, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until the intake worker has filed every stored input: the form answers as soon as
    the letter is stored, and the worker files it moments later."""
    from sqlalchemy import func, select

    from storage.models import RawIntake

    loop = asyncio.get_running_loop()
    # A service just started first warms its prepare processes and builds its repeat index
    # (seconds, more on a loaded machine): the wait for filing starts when that is done.
    intake = service.runtime.worker("intake")
    started = loop.time() + 120.0
    while intake.state == "starting":
        if loop.time() > started:
            raise AssertionError("the intake worker did not start within 120 s")
        await asyncio.sleep(0.02)
    deadline = loop.time() + timeout
    while True:
        async with service.runtime.sessions() as s:
            pending = await s.scalar(select(func.count()).select_from(RawIntake)
                                     .where(RawIntake.state == "pending"))
        if not pending:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{pending} inputs still not filed after {timeout} s")
        service.runtime.intake_wakeup.set()
        await asyncio.sleep(0.02)
