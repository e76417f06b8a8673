"""Fixtures for the casework tests: staff accounts with API tokens (helpers in support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.app import Service
from tests.bot.casework.support import Staff, staff_with_token


@pytest.fixture
async def supervisor(service: Service) -> Staff:
    return await staff_with_token(service, "supervisor1", "supervisor")


@pytest.fixture
async def reviewer(service: Service) -> Staff:
    return await staff_with_token(service, "reviewer1", "reviewer")


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http
