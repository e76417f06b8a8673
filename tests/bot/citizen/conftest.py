"""Fixtures for the citizen side: a service with chosen web limits, and an axe-ready browser page.

``a11y_page`` is a page whose browser context bypasses our Content-Security-Policy, so that the
vendored axe-core (tests/vendor/axe.min.js) can be injected; the pages under test are unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from bot.app import Service, start
from testing.smtp import SmtpSink
from tests.conftest import make_settings

StartService = Callable[..., Awaitable[Service]]


@pytest.fixture
async def start_service(db_url: str, tmp_path: Path, smtp_sink: SmtpSink
                        ) -> AsyncIterator[StartService]:
    """Start the service with extra settings sections, e.g. ``web={"lookups_per_hour": 2}``."""
    started: list[Service] = []

    async def _start(**sections: dict[str, Any]) -> Service:
        svc = await start(make_settings(db_url, tmp_path, smtp_sink, **sections))
        started.append(svc)
        return svc

    try:
        yield _start
    finally:
        for svc in started:
            await svc.stop()


@pytest.fixture
async def a11y_page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="zh-CN", bypass_csp=True,
                                        viewport={"width": 360, "height": 780})
    try:
        yield await context.new_page()
    finally:
        await context.close()
