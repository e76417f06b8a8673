"""Console sign-in: sessions, the login and logout views, and the guard in front of every route.

The guard is a middleware, not a decorator, so that no console or API route can be forgotten:
every path under ``/console/`` needs a signed-in, enabled staff member (else a redirect to the
login page), every path under ``/api/v1/`` a valid API token (else 401), and every state-changing
console request a CSRF token. Sessions live in an encrypted cookie (aiohttp-session with Fernet,
keyed from the service secret); signing in starts a new session (no fixation), and a session dies
when its user signs out, is disabled (or disabled and enabled again) or changes password: the
cookie carries the account's session generation (``users.session_gen``), which each of those
raises, and every request compares it, so a replayed old cookie is refused by the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from bot.web.console import csrf, sessions
from bot.web.console.security import client_ip
from bot.web.console.sessions import get_session, new_session
from bot.web.console.throttle import LoginThrottle
from bot.web.keys import RUNTIME
from bot.web.middlewares import Handler
from storage import events, users
from storage.models import User

log = logging.getLogger(__name__)
USER: web.RequestKey[User] = web.RequestKey("console_user", User)  # the signed-in User
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("console_throttle", LoginThrottle)
HASHING: web.AppKey[ThreadPoolExecutor] = web.AppKey("console_hashing", ThreadPoolExecutor)
# argon2id (RFC 9106 defaults) takes 64 MiB and a few tenths of a second of CPU per check; it
# runs in these threads, never on the event loop (which must keep answering /healthz and the
# form), and at most this many at once, so a burst of logins queues instead of taking the host.
PASSWORD_CHECKS = 2
SESSION_HOURS = 12
LOGIN_PATH = "/console/login"
API_PREFIX = "/api/v1/"


def password_mark(user: User) -> str:
    """Changes when the password does: a new password ends every old session."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


async def password_ok(request: web.Request, user: User | None, password: str) -> bool:
    """``users.password_ok`` off the event loop, in the bounded hashing threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[HASHING], users.password_ok, user, password)


def current(request: web.Request) -> User:
    return request[USER]


async def _session_user(request: web.Request) -> User | None:
    session = await get_session(request)
    uid = session.get("uid")
    if not isinstance(uid, int) or time.time() - session.get("at", 0) > SESSION_HOURS * 3600:
        return None
    async with request.app[RUNTIME].sessions() as db:
        user = await users.get(db, uid)
    if (user is None or user.disabled or session.get("pw") != password_mark(user)
            or session.get("gen") != user.session_gen):
        return None
    return user


async def _token_user(request: web.Request) -> User | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    async with request.app[RUNTIME].sessions() as db:
        return await users.by_token(db, value.strip())


def _is_console(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(API_PREFIX):
        user = await _token_user(request)
        if user is None:
            raise web.HTTPUnauthorized(text='{"error": "unauthorized"}',
                                       content_type="application/json",
                                       headers={"WWW-Authenticate": 'Bearer realm="feedback-bot"'})
        request[USER] = user
    elif _is_console(path) and path != LOGIN_PATH:
        user = await _session_user(request)
        if user is None:
            target = request.path_qs if request.method == "GET" else "/console"
            raise web.HTTPFound(f"{LOGIN_PATH}?next={quote(target, safe='')}")
        request[USER] = user
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            await csrf.check(request, await get_session(request))
    response = await handler(request)
    if path.startswith(API_PREFIX) or _is_console(path):
        # Letters and reporters' names must not stay in a browser's or a proxy's cache after
        # the session ends (a shared office computer): nothing of the console is stored.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console"


async def _render_login(request: web.Request, error: str | None = None,
                        status: int = 200) -> web.Response:
    session = await get_session(request)
    context = {"csrf": csrf.token(session), "error": error,
               "next": _safe_next(request.query.get("next")), "name": ""}
    return aiohttp_jinja2.render_template("console/login.html", request, context, status=status)


async def login_form(request: web.Request) -> web.Response:
    if await _session_user(request) is not None:
        raise web.HTTPFound(_safe_next(request.query.get("next")))
    return await _render_login(request)


async def login(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    await csrf.check(request, await get_session(request))
    data = await request.post()
    name = str(data.get("name", "")).strip()[:64]
    password = str(data.get("password", ""))
    ip = client_ip(request, rt.settings.web.trusted_proxies)
    throttle = request.app[THROTTLE]
    attempt = throttle.begin(name, ip)  # counted now, before the first await below
    if attempt.refused_for > 0:
        log.warning("console login refused while throttled: name=%r ip=%s", name, ip)
        await _audit(request, name, "login-throttled", ip)
        return await _render_login(
            request, f"尝试次数过多，请 {int(attempt.refused_for) + 1} 秒后再试。", status=429)
    if attempt.delay:
        await asyncio.sleep(attempt.delay)  # this name is being guessed from many addresses
    async with rt.sessions() as db:
        user = await users.by_name(db, name)
    if not await password_ok(request, user, password):
        log.warning("console login failed: name=%r ip=%s", name, ip)
        await _audit(request, name, "login-failed", ip)
        return await _render_login(request, "用户名或密码不正确。", status=401)
    assert user is not None
    throttle.succeeded(attempt)
    await _audit(request, user.name, "login", ip)
    old = await get_session(request)
    old.invalidate()
    session = await new_session(request)  # a fresh session: no fixation
    session["uid"], session["pw"], session["at"] = user.id, password_mark(user), int(time.time())
    session["gen"] = user.session_gen
    csrf.token(session)
    raise web.HTTPFound(_safe_next(str(data.get("next", ""))))


async def logout(request: web.Request) -> web.Response:
    """Sign out: this cookie is cleared, and the server ends the account's sessions (a copy of
    the cookie kept elsewhere no longer works; the account's other sign-ins end too)."""
    async with request.app[RUNTIME].sessions.begin() as db:
        await users.end_sessions(db, current(request).id)
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPFound(LOGIN_PATH)


async def _audit(request: web.Request, name: str, action: str, ip: str) -> None:
    async with request.app[RUNTIME].sessions.begin() as db:
        await events.record(db, None, name or "?", action, {"ip": ip})


def setup(app: web.Application) -> None:
    rt = app[RUNTIME]
    https = rt.settings.web.public_url.startswith("https://")
    store = sessions.storage(rt.secret, https, SESSION_HOURS * 3600)
    app.middlewares.append(sessions.middleware(store))
    app.middlewares.append(guard)
    app[THROTTLE] = LoginThrottle()
    app[HASHING] = ThreadPoolExecutor(PASSWORD_CHECKS, thread_name_prefix="argon2")

    async def stop_hashing(app: web.Application) -> None:
        app[HASHING].shutdown(wait=True, cancel_futures=True)

    app.on_cleanup.append(stop_hashing)
    app.router.add_get(LOGIN_PATH, login_form)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post("/console/logout", logout)


async def flash(request: web.Request, message: str) -> None:
    """A one-time notice shown on the next page (after a redirect)."""
    (await get_session(request))["flash"] = message


async def render(request: web.Request, template: str, context: dict,
                 status: int = 200) -> web.Response:
    """Render a console page with what every page needs: user, CSRF token, pending notice."""
    session = await get_session(request)
    context = {**context, "user": request.get(USER), "csrf": csrf.token(session),
               "flash": session.pop("flash", None)}
    return aiohttp_jinja2.render_template(template, request, context, status=status)
