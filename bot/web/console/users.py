"""Staff accounts in the browser: the admins' account page (/console/users) and every staff
member's own password change (/console/password).

What the CLI (``feedback-bot user``) does, an admin can do here without a shell: add an account,
disable or enable it, change its role, set a new password, issue a new API token. The rules for
names, passwords and the last admin are ``storage.users``'s, shared with the CLI. Each change is
written to the audit log in the same transaction (never a password or a token), then the page
redirects back with a notice (post/redirect/get) — except a new token, which is shown once on the
answer itself, because putting it in the session cookie for the redirect would store it.

An admin cannot disable or demote themself (they would lock themself out halfway through), nor set
their own password here: that needs the current password, on /console/password.
"""

from __future__ import annotations

import logging

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.console import auth
from bot.web.console.present import ROLE_NAMES, local
from bot.web.console.security import client_ip
from bot.web.console.sessions import get_session
from bot.web.keys import RUNTIME
from bot.web.params import path_id
from storage import events, users
from storage.models import User

log = logging.getLogger(__name__)
PAGE = "/console/users"
OWN_PAGE = "/console/password"


class Refused(Exception):
    """A change the rules forbid; the message tells the admin why (400)."""


def _admin(request: web.Request) -> User:
    user = auth.current(request)
    if user.role != "admin":
        raise web.HTTPForbidden(text="账号管理仅管理员可以使用。")
    return user


def _field(data: MultiDictProxy, name: str, limit: int = 2048) -> str:
    return str(data.get(name, ""))[:limit]


async def _render(request: web.Request, *, error: str | None = None, status: int = 200,
                  form: dict[str, str] | None = None,
                  token: tuple[str, str] | None = None) -> web.Response:
    """The account page; ``token`` is (account name, new token), shown once."""
    rt = request.app[RUNTIME]
    me = auth.current(request)
    tz = rt.settings.digest.timezone
    async with rt.sessions() as db:
        accounts = await users.list_all(db)
    rows = [{"id": u.id, "name": u.name, "role": u.role,
             "role_name": ROLE_NAMES.get(u.role, u.role), "disabled": u.disabled,
             "has_token": bool(u.api_token_hash), "created": local(u.created_at, tz),
             "me": u.id == me.id} for u in accounts]
    response = await auth.render(request, "console/users.html", {
        "accounts": rows, "roles": ROLE_NAMES, "error": error, "token": token,
        "form": form or {"name": "", "role": "reviewer"}, "min_password": users.MIN_PASSWORD,
    }, status=status)
    response.headers["Cache-Control"] = "no-store"  # a new token may be on it
    return response


async def show(request: web.Request) -> web.Response:
    _admin(request)
    return await _render(request)


async def add(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    me = _admin(request)
    data = await request.post()
    name, role = _field(data, "name", 200), _field(data, "role", 32)
    try:
        users.check_password(_field(data, "password"), _field(data, "password2"))
        async with rt.sessions.begin() as db:
            user = await users.add(db, name, role, _field(data, "password"))
            await events.record(db, None, me.name, "user-added",
                                {"user": user.name, "role": user.role})
    except users.UserError as exc:
        return await _render(request, error=str(exc), status=400,
                             form={"name": name.strip(), "role": role})
    await auth.flash(request, f"已添加账号 {user.name}（{ROLE_NAMES[user.role]}）。")
    raise web.HTTPSeeOther(PAGE)


async def _disable(db: AsyncSession, me: User, target: User, data: MultiDictProxy) -> str:
    if target.id == me.id:
        raise Refused("不能停用自己的账号。")
    if target.disabled:
        return f"账号 {target.name} 已是停用状态。"
    await users.set_disabled(db, target.name, True)
    await events.record(db, None, me.name, "user-disabled", {"user": target.name})
    return f"已停用账号 {target.name}：其登录和 API 令牌立即失效。"


async def _enable(db: AsyncSession, me: User, target: User, data: MultiDictProxy) -> str:
    if not target.disabled:
        return f"账号 {target.name} 已是启用状态。"
    await users.set_disabled(db, target.name, False)
    await events.record(db, None, me.name, "user-enabled", {"user": target.name})
    return f"已启用账号 {target.name}（如需 API 令牌请重新签发）。"


async def _role(db: AsyncSession, me: User, target: User, data: MultiDictProxy) -> str:
    role = _field(data, "role", 32)
    users.check_role(role)
    if target.id == me.id and role != "admin":
        raise Refused("不能取消自己的管理员角色：请由另一位管理员操作。")
    before = target.role
    if role == before:
        return f"{target.name} 的角色没有变化。"
    await users.set_role(db, target.name, role)
    await events.record(db, None, me.name, "user-role",
                        {"user": target.name, "from": before, "to": role})
    return f"已将 {target.name} 的角色改为{ROLE_NAMES[role]}。"


async def _password(db: AsyncSession, me: User, target: User, data: MultiDictProxy) -> str:
    if target.id == me.id:
        raise Refused("修改自己的密码请使用“修改密码”页面（需要输入当前密码）。")
    password = _field(data, "password")
    users.check_password(password, _field(data, "password2"))
    await users.set_password(db, target.name, password)
    await events.record(db, None, me.name, "user-password", {"user": target.name})
    return f"已为 {target.name} 设置新密码：其现有登录已全部退出。"


ACTIONS = {"disable": _disable, "enable": _enable, "role": _role, "password": _password}


async def change(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    me = _admin(request)
    action = request.match_info["action"]
    if action not in ACTIONS and action != "token":
        raise web.HTTPNotFound()
    uid = path_id(request)
    data = await request.post()
    issued: tuple[str, str] | None = None
    message = ""
    try:
        async with rt.sessions.begin() as db:
            target = await users.get(db, uid)
            if target is None:
                raise web.HTTPNotFound()
            if action == "token":
                issued = (target.name, await _token(db, me, target))
            else:
                message = await ACTIONS[action](db, me, target, data)
    except (users.UserError, Refused) as exc:
        return await _render(request, error=str(exc), status=400)
    if issued is not None:  # committed; shown on this answer only, never kept anywhere
        return await _render(request, token=issued)
    await auth.flash(request, message)
    raise web.HTTPSeeOther(PAGE)


async def _token(db: AsyncSession, me: User, target: User) -> str:
    """A new API token for ``target``; the old one stops working when this commits."""
    if target.disabled:
        raise Refused(f"账号 {target.name} 已停用：请先启用，再签发令牌。")
    token = await users.issue_token(db, target.name)
    await events.record(db, None, me.name, "token-issued", {"user": target.name})
    return token


async def _render_own(request: web.Request, error: str | None = None,
                      status: int = 200) -> web.Response:
    return await auth.render(request, "console/password.html",
                             {"error": error, "min_password": users.MIN_PASSWORD}, status=status)


async def own_form(request: web.Request) -> web.Response:
    return await _render_own(request)


_WHY = {"throttled": "尝试次数过多", "wrong": "当前密码不正确"}


async def _own_failed(request: web.Request, me: User, ip: str, why: str) -> None:
    log.warning("console password change refused: name=%r ip=%s (%s)", me.name, ip, why)
    async with request.app[RUNTIME].sessions.begin() as db:
        await events.record(db, None, me.name, "password-change-failed",
                            {"user": me.name, "ip": ip, "why": _WHY[why]})


async def change_own(request: web.Request) -> web.Response:
    """Change one's own password. A wrong current password counts as a failed login (same
    throttle, by name and address), so a stolen session cannot be used to guess it."""
    rt = request.app[RUNTIME]
    me = auth.current(request)
    data = await request.post()
    current, new, again = (_field(data, k) for k in ("current", "password", "password2"))
    ip = client_ip(request, rt.settings.web.trusted_proxies)
    throttle = request.app[auth.THROTTLE]
    attempt = throttle.begin(me.name, ip)  # counted before any await, as a login is
    if attempt.refused_for > 0:
        await _own_failed(request, me, ip, "throttled")
        return await _render_own(
            request, f"尝试次数过多，请 {int(attempt.refused_for) + 1} 秒后再试。", 429)
    async with rt.sessions() as db:
        user = await users.get(db, me.id)
    if not await auth.password_ok(request, user, current):
        await _own_failed(request, me, ip, "wrong")
        return await _render_own(request, "当前密码不正确。", 400)
    throttle.succeeded(attempt)
    try:
        users.check_password(new, again)
        if new == current:
            raise users.UserError("新密码不能与当前密码相同。")
        async with rt.sessions.begin() as db:
            updated = await users.set_password(db, me.name, new)
            await events.record(db, None, me.name, "password-changed",
                                {"user": me.name, "ip": ip})
            mark, gen = auth.password_mark(updated), updated.session_gen
    except users.UserError as exc:
        return await _render_own(request, str(exc), 400)
    # This session carries the new password's mark and lives on; every other one no longer
    # matches and ends (auth._session_user).
    session = await get_session(request)
    session["pw"], session["gen"] = mark, gen
    await auth.flash(request, "密码已修改。其他地方的登录已全部退出。")
    raise web.HTTPSeeOther(OWN_PAGE)


def setup(app: web.Application) -> None:
    app.router.add_get(PAGE, show)
    app.router.add_post(PAGE, add)
    app.router.add_post(PAGE + "/{id}/{action}", change)
    app.router.add_get(OWN_PAGE, own_form)
    app.router.add_post(OWN_PAGE, change_own)

