"""Helpers for the mail source tests: build letters, talk to Dovecot as a mail client would,
wait for the service to get somewhere, read what it stored."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any, TypeVar

from imapclient import IMAPClient
from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import Followup, Outbox, RawIntake, Submission

T = TypeVar("T")

LETTER = "我们小区门口的路灯坏了三个月，晚上出行很不安全，多次反映没有人处理，希望尽快修复。"
# The report's own deployment: the published mailbox is at a shared provider, and citizens write
# from the same provider (and from qq.com).
MAILBOX = "ntzfwjgdw@163.com"
CITIZEN = "zhangsan1968@163.com"


def provider_msgid(sender: str) -> str:
    """A Message-ID shaped as the sender's webmail writes it: 163.com's Coremail puts the
    sender's address after hex fields, QQ Mail a ``tencent_`` hex token; others make_msgid."""
    local, _, domain = sender.rpartition("@")
    stamp = secrets.token_hex(4)
    if domain.lower() in ("163.com", "126.com", "yeah.net"):
        return f"<{stamp}.{secrets.token_hex(2)}.{secrets.token_hex(6)}.Coremail.{local}@{domain}>"
    if domain.lower() in ("qq.com", "foxmail.com"):
        return f"<tencent_{secrets.token_hex(12).upper()}@{domain}>"
    return make_msgid(domain=domain or "example.com")


def letter(subject: str = "反映路灯问题", body: str = LETTER,
           sender: str = CITIZEN, msgid: str | None = None,
           headers: dict[str, str] | None = None) -> bytes:
    """A citizen's mail as a mail client would APPEND it (CRLF line ends)."""
    msg = EmailMessage()
    msg["From"] = f"张三 <{sender}>"
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = msgid or provider_msgid(sender)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


def imap_section(acct: Any, **over: Any) -> dict[str, Any]:
    section = {"host": acct.host, "port": acct.port, "ssl": False, "starttls": False,
               "user": acct.user, "password": acct.password, "poll_seconds": 0.5,
               "processed_folder": "Processed"}
    section.update(over)
    return section


def _client(acct: Any) -> IMAPClient:
    c = IMAPClient(acct.host, port=acct.port, ssl=False, timeout=10)
    c.login(acct.user, acct.password)
    return c


def append_sync(acct: Any, *raws: bytes, folder: str = "INBOX") -> None:
    with _client(acct) as c:
        if not c.folder_exists(folder):
            c.create_folder(folder)
        for raw in raws:
            c.append(folder, raw)


async def append(acct: Any, *raws: bytes, folder: str = "INBOX") -> None:
    await asyncio.to_thread(append_sync, acct, *raws, folder=folder)


def _contents(acct: Any, folder: str) -> list[tuple[bytes, tuple[bytes, ...]]] | None:
    with _client(acct) as c:
        if not c.folder_exists(folder):
            return None
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        return [(data[u][b"BODY[]"], data[u][b"FLAGS"]) for u in sorted(data)]


async def contents(acct: Any, folder: str) -> list[tuple[bytes, tuple[bytes, ...]]] | None:
    """(bytes, flags) of every message in a folder, or None when the folder does not exist."""
    return await asyncio.to_thread(_contents, acct, folder)


async def until(probe: Callable[[], Awaitable[T]], timeout: float = 10.0,
                what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {value!r}")
        await asyncio.sleep(0.05)


async def raw_rows(rt: Runtime) -> list[RawIntake]:
    async with rt.sessions() as s:
        return list(await s.scalars(select(RawIntake).order_by(RawIntake.id)))


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def submissions(rt: Runtime) -> list[Submission]:
    async with rt.sessions() as s:
        return list(await s.scalars(select(Submission).order_by(Submission.id)))


async def outbox_rows(rt: Runtime) -> list[Outbox]:
    async with rt.sessions() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def followups(rt: Runtime) -> list[Followup]:
    async with rt.sessions() as s:
        return list(await s.scalars(select(Followup).order_by(Followup.id)))
