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
