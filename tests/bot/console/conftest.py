"""Fixtures for the console tests (helpers in support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.app import Service
from tests.bot.console.support import Staff, add_user


@pytest.fixture
async def reviewer(service: Service) -> Staff:
    return await add_user(service, "reviewer1", "reviewer")


@pytest.fixture
async def supervisor(service: Service) -> Staff:
    return await add_user(service, "supervisor1", "supervisor")


@pytest.fixture
async def admin(service: Service) -> Staff:
    return await add_user(service, "admin1", "admin")


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http
