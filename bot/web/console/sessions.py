"""Console sessions: aiohttp-session's encrypted cookie storage behind typed request keys.

The cookie format, encryption (Fernet, keyed from the service secret) and expiry are
aiohttp-session's ``EncryptedCookieStorage``. Its own middleware keeps the session under plain
string request keys, which aiohttp 3.14 deprecates with a warning on every request; this module is
that middleware's twenty lines again with ``web.RequestKey``s, and nothing more.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.web.middlewares import Handler

COOKIE = "feedback_console"
STORAGE: web.RequestKey[EncryptedCookieStorage] = web.RequestKey("console_session_storage",
                                                                 EncryptedCookieStorage)
SESSION: web.RequestKey[Session] = web.RequestKey("console_session", Session)


def storage(secret: bytes, https: bool, max_age: int) -> EncryptedCookieStorage:
    key = hmac.new(secret, b"console-session", hashlib.sha256).digest()
    return EncryptedCookieStorage(key, cookie_name=COOKIE, max_age=max_age, httponly=True,
                                  samesite="Lax", secure=https, path="/console")


async def get_session(request: web.Request) -> Session:
    session = request.get(SESSION)
    if session is None:
        session = await request[STORAGE].load_session(request)
        request[SESSION] = session
    return session


async def new_session(request: web.Request) -> Session:
    session = await request[STORAGE].new_session()
    request[SESSION] = session
    return session


def middleware(store: EncryptedCookieStorage) -> Middleware:
    @web.middleware
    async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[STORAGE] = store
        raised: web.HTTPException | None = None
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = raised = exc
        session = request.get(SESSION)
        if (session is not None and session._changed
                and isinstance(response, (web.Response, web.HTTPException))
                and not response.prepared):
            await store.save_session(request, response, session)
        if raised is not None:
            raise raised
        return response

    return sessions
