"""CSRF protection for the console: a per-session secret echoed by every state-changing request.

Every form carries the session's token in a hidden ``csrf`` field; a POST whose token is missing
or wrong is refused with 403 before any view runs, as is a POST whose Origin is another site.
The session cookie is also SameSite=Lax, so browsers do not even send it on cross-site POSTs.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import BodyPartReader, web
from aiohttp_session import Session

from bot.web.middlewares import same_origin
from bot.web.uploads import MULTIPART

FIELD = "csrf"
HEADER = "X-CSRF-Token"
SESSION_KEY = "csrf"


def token(session: Session) -> str:
    """The session's token, created on first use."""
    value = session.get(SESSION_KEY)
    if not value:
        value = secrets.token_urlsafe(32)
        session[SESSION_KEY] = value
    return str(value)


async def _first_part(request: web.Request) -> str:
    """The token of a form with files (staff entry's scans): its first part, which must be
    the ``csrf`` field. Read without the rest, so that the view reads the files in a stream
    under its own limits (``uploads.read_form``) instead of ``request.post()`` holding them
    all in memory under the 1 MB text limit."""
    try:
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != FIELD or part.filename:
            return ""
        value = b""
        while chunk := await part.read_chunk(256):
            value += chunk
            if len(value) > 1024:  # no token is this long
                return ""
    except (ValueError, LookupError, AssertionError) as exc:  # a broken body: sender's fault
        raise web.HTTPBadRequest() from exc
    request[MULTIPART] = reader
    return value.decode("ascii", "replace").strip()


async def check(request: web.Request, session: Session) -> None:
    """Raise 403 unless the request proves it came from one of our pages."""
    if not same_origin(request):
        raise web.HTTPForbidden()
    expected = session.get(SESSION_KEY)
    sent = request.headers.get(HEADER)
    if sent is None and request.content_type == "multipart/form-data":
        sent = await _first_part(request)
    elif sent is None:
        data = await request.post()
        sent = str(data.get(FIELD, ""))
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise web.HTTPForbidden()
