"""Steps a citizen (and, for setup, a staff member) takes, shared by the citizen-side tests."""

from __future__ import annotations

import re
import struct
import zlib
from email.message import EmailMessage

import aiohttp
from sqlalchemy import select

from bot.app import Service
from handlers import tracking
from handlers.mail import compose
from storage import events, outbox
from storage.db import utcnow
from storage.models import Submission
from tests.bot.helpers import form_token, tracking_no

LETTER = "社区派出所办理居住证要跑三次，窗口说材料不全但又不一次性告知，希望整改措施落到实处。"
TOKEN = re.compile(r'name="token" value="([^"]+)"')
CODE = re.compile(r'id="query-code">(\d{6})<')
MAIL_CODE = re.compile(r"查询码：\s*(\d{6})")


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (grey pixels), so uploads carry a real image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


def query_code(html: str) -> str:
    match = CODE.search(html)
    assert match, "no query code on the page"
    return match.group(1)


def page_token(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "the page has no token field"
    return match.group(1)


async def submit_multipart(http: aiohttp.ClientSession, base_url: str,
                           files: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
                           **fields: str) -> tuple[int, str]:
    """Post the form as a browser does with attachments: (filename, bytes, declared type)."""
    form = aiohttp.FormData()
    form.add_field("token", await form_token(http, base_url))
    for key, value in fields.items():
        form.add_field(key, value)
    for name, data, ctype in files:
        form.add_field("attachments", data, filename=name, content_type=ctype)
    async with http.post(f"{base_url}/feedback", data=form) as resp:
        return resp.status, await resp.text()


async def submit_letter(http: aiohttp.ClientSession, base_url: str, **fields: str
                        ) -> tuple[str, str]:
    """(tracking number, query code) of a new letter."""
    status, html = await submit_multipart(http, base_url, body=LETTER, **fields)
    assert status == 200, html
    return tracking_no(html), query_code(html)


async def lookup(http: aiohttp.ClientSession, base_url: str, tn: str, code: str,
                 headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    async with http.get(f"{base_url}/status") as resp:
        token = page_token(await resp.text())
    data = {"token": token, "tracking_no": tn, "query_code": code}
    resp = await http.post(f"{base_url}/status", data=data, allow_redirects=False,
                           headers=headers)
    await resp.read()
    return resp


async def post_on_status(http: aiohttp.ClientSession, base_url: str, path: str,
                         **fields: str) -> tuple[int, str]:
    """Post one of the status page's own forms (follow-up, rating, logout), following redirects."""
    async with http.get(f"{base_url}/status") as resp:
        token = page_token(await resp.text())
    async with http.post(f"{base_url}{path}", data={"token": token, **fields}) as resp:
        return resp.status, await resp.text()


async def resolve(service: Service, tn: str, reply: str | None = None,
                  status: str = "resolved") -> None:
    """What a staff member does in the console: close the case and mail a reply."""
    rt = service.runtime
    async with rt.sessions.begin() as session:
        sub = await session.scalar(select(Submission).where(Submission.tracking_no == tn))
        assert sub is not None
        sub.status, sub.resolved_at, sub.updated_at = status, utcnow(), utcnow()
        await events.record(session, sub.id, "staff:test", "status", {"status": status})
        if reply is None or not sub.from_addr:
            return
        message_id = tracking.signed_message_id(rt.secret, "reply", tn,
                                                rt.settings.message_id_domain)
        data = compose.build(compose.Outgoing(
            from_addr=rt.settings.smtp.from_addr, from_name="市委政法委",
            to=[("", sub.from_addr)], subject=f"【答复】{tn}", text=reply, html=None,
            message_id=message_id, auto_submitted="no"))
        await outbox.enqueue(session, purpose="reply", recipient=sub.from_addr,
                             sender=rt.settings.smtp.from_addr, message_id=message_id,
                             message=data, submission_id=sub.id)
    rt.outbox_wakeup.set()


def mail_query_code(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()
    match = MAIL_CODE.search(text)
    assert match, "the acknowledgement has no query code"
    return match.group(1)


def client() -> aiohttp.ClientSession:
    """An HTTP client that keeps cookies for an IP-address host, as a browser does."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
