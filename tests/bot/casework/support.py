"""Helpers for the casework tests: API calls as a staff member, and the notices that arrived."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.app import Service
from storage import users
from testing.smtp import Received, SmtpSink
from tests.bot.console import support as console
from tests.bot.console.support import add_user
from tests.bot.helpers import wait_mail


@dataclass
class Staff(console.Staff):
    """A staff account with an API token."""

    token: str


async def staff_with_token(service: Service, name: str, role: str) -> Staff:
    user = await add_user(service, name, role)
    async with service.runtime.sessions.begin() as db:
        token = await users.issue_token(db, name)
    return Staff(user.name, role, user.id, token)


async def act(base: str, staff: Staff, key: str, body: Any, *,
              raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """POST an action to the write API: (status, JSON answer)."""
    headers = {"Authorization": f"Bearer {staff.token}", "Content-Type": "application/json"}
    data = raw if raw is not None else json.dumps(body).encode()
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/v1/submissions/{key}/actions", data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def get(base: str, staff: Staff, key: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {staff.token}"}
    async with aiohttp.ClientSession() as http, http.get(
            f"{base}/api/v1/submissions/{key}", headers=headers) as resp:
        return resp.status, await resp.json()


def text_of(mail: Received) -> str:
    return mail.message.get_body(("plain",)).get_content()


async def next_mail(sink: SmtpSink, seen: int) -> Received:
    """The next message to arrive at the sink after ``seen`` others."""
    return (await wait_mail(sink, seen + 1, timeout=20))[seen]
