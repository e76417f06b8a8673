"""Staff accounts in the browser: an admin adds, disables, enables, re-roles and resets accounts
and issues API tokens on /console/users; everyone changes their own password on
/console/password. Each change works the way the person affected would notice (they can or can no
longer sign in, see a page, call the API), only admins can make them, and each is in the audit log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from bot.app import Service
from storage import audit, users
from storage.models import User
from tests.bot.console.support import PASSWORD, Staff, add_user, login, page_csrf, post_form

NEW_PASSWORD = "a brand new long password"
TOKEN = re.compile(r'<code class="mono" id="token-value">([^<]+)</code>')


@asynccontextmanager
async def _browser() -> AsyncIterator[aiohttp.ClientSession]:
    """Another person's (or another device's) browser, with a cookie jar of its own."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """(status, body, final path) after following redirects."""
    async with http.get(url) as resp:
        return resp.status, await resp.text(), resp.url.path


async def _signed_in(http: aiohttp.ClientSession, base: str, name: str,
                     password: str = PASSWORD) -> str:
    """Sign in and return the session's CSRF token."""
    resp = await login(http, base, name, password)
    assert resp.status == 302, f"{name} could not sign in ({resp.status})"
    return await page_csrf(http, f"{base}/console")


async def _user(service: Service, name: str) -> User:
    async with service.runtime.sessions() as db:
        user = await users.by_name(db, name)
    assert user is not None
    return user


async def _audit_page(service: Service, http: aiohttp.ClientSession) -> str:
    status, page, _ = await _get(http, f"{service.base_url}/console/audit")
    assert status == 200
    return page


async def test_admin_adds_a_reviewer_who_can_then_sign_in(
        service: Service, admin: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    status, page, _ = await _get(client, f"{base}/console")
    assert 'href="/console/users"' in page and 'href="/console/password"' in page  # the nav
    form = {"csrf": csrf, "name": "  zhao  ", "role": "reviewer",
            "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    status, _, location = await post_form(client, f"{base}/console/users", form)
    assert status == 303 and location == "/console/users"
    status, page, _ = await _get(client, f"{base}/console/users")
    assert status == 200 and "已添加账号 zhao（审核员）" in page
    row = page.split('id="user-', 1)[1]
    assert ">zhao<" in page and "审核员" in row
    async with _browser() as other:
        await _signed_in(other, base, "zhao", NEW_PASSWORD)
        status, page, path = await _get(other, f"{base}/console")
        assert status == 200 and path == "/console" and "zhao（审核员）" in page
        assert 'href="/console/users"' not in page  # a reviewer is not offered the page
    page = await _audit_page(service, client)
    assert "添加账号" in page and "账号：zhao" in page
    assert NEW_PASSWORD not in page


async def test_disabling_ends_the_session_and_enabling_lets_them_back(
        service: Service, admin: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    async with _browser() as theirs:
        await _signed_in(theirs, base, reviewer.name)
        status, _, location = await post_form(
            client, f"{base}/console/users/{reviewer.id}/disable", {"csrf": csrf})
        assert status == 303 and location == "/console/users"
        status, page, path = await _get(theirs, f"{base}/console")
        assert path == "/console/login" and "工作人员登录" in page  # their next page
        assert (await login(theirs, base, reviewer.name)).status == 401
        status, page, _ = await _get(client, f"{base}/console/users")
        row = page.split(f'id="user-{reviewer.id}"', 1)[1].split("</tr>", 1)[0]
        assert "已停用" in row and "启用" in row
        status, _, _ = await post_form(
            client, f"{base}/console/users/{reviewer.id}/enable", {"csrf": csrf})
        assert status == 303
        assert (await login(theirs, base, reviewer.name)).status == 302
    page = await _audit_page(service, client)
    assert "停用账号" in page and "启用账号" in page and f"账号：{reviewer.name}" in page


async def test_role_change_takes_effect_on_the_next_page(
        service: Service, admin: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    async with _browser() as theirs:
        await _signed_in(theirs, base, reviewer.name)
        assert (await _get(theirs, f"{base}/console/audit"))[0] == 403
        url = f"{base}/console/users/{reviewer.id}/role"
        status, page, _ = await post_form(client, url, {"csrf": csrf, "role": "root"})
        assert status == 400 and "没有这个角色" in page
        status, _, _ = await post_form(client, url, {"csrf": csrf, "role": "supervisor"})
        assert status == 303
        assert (await _get(theirs, f"{base}/console/audit"))[0] == 200  # same session
        assert (await _get(theirs, f"{base}/console/users"))[0] == 403
        await post_form(client, url, {"csrf": csrf, "role": "admin"})
        status, page, _ = await _get(theirs, f"{base}/console/users")
        assert status == 200 and "账号管理" in page
    assert (await _user(service, reviewer.name)).role == "admin"
    page = await _audit_page(service, client)
    assert "更改账号角色" in page and "改为：主管" in page and "改为：管理员" in page


async def test_reset_password_works_and_the_old_one_does_not(
        service: Service, admin: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    url = f"{base}/console/users/{reviewer.id}/password"
    async with _browser() as theirs:
        await _signed_in(theirs, base, reviewer.name)
        status, page, _ = await post_form(client, url, {"csrf": csrf, "password": NEW_PASSWORD,
                                                        "password2": NEW_PASSWORD + "x"})
        assert status == 400 and "两次输入的密码不一致" in page
        status, page, _ = await post_form(client, url, {"csrf": csrf, "password": "short",
                                                        "password2": "short"})
        assert status == 400 and "密码太短" in page
        assert (await _get(theirs, f"{base}/console"))[2] == "/console"  # nothing changed yet
        status, _, _ = await post_form(client, url, {"csrf": csrf, "password": NEW_PASSWORD,
                                                     "password2": NEW_PASSWORD})
        assert status == 303
        assert (await _get(theirs, f"{base}/console"))[2] == "/console/login"  # session ended
        assert (await login(theirs, base, reviewer.name, PASSWORD)).status == 401
        assert (await login(theirs, base, reviewer.name, NEW_PASSWORD)).status == 302
    page = await _audit_page(service, client)
    assert "重设账号密码" in page and NEW_PASSWORD not in page


async def test_token_issued_on_the_page_works_once_shown_and_replaces_the_old(
        service: Service, admin: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    url = f"{base}/console/users/{reviewer.id}/token"
    tokens = []
    for _ in range(2):
        async with client.post(url, data={"csrf": csrf}, allow_redirects=False) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
            match = TOKEN.search(await resp.text())
        assert match, "the new token is not on the page"
        tokens.append(match.group(1))
    first, second = tokens
    assert first != second
    async with aiohttp.ClientSession() as api:
        for token, expected in ((first, 401), (second, 200)):
            async with api.get(f"{base}/api/v1/submissions",
                               headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == expected, token
    stored = (await _user(service, reviewer.name)).api_token_hash
    assert stored == users.hash_token(second) and second not in (stored or "")
    _, page, _ = await _get(client, f"{base}/console/users")
    assert second not in page and "已签发" in page  # shown once, never again
    page = await _audit_page(service, client)
    assert page.count("签发 API 令牌</td>") == 2 and second not in page and first not in page


async def test_reviewers_and_supervisors_get_403_and_change_nothing(
        service: Service, admin: Staff, reviewer: Staff, supervisor: Staff):
    base = service.base_url
    for who in (reviewer, supervisor):
        async with _browser() as http:
            csrf = await _signed_in(http, base, who.name)
            status, page, _ = await _get(http, f"{base}/console")
            assert 'href="/console/users"' not in page and 'href="/console/password"' in page
            assert (await _get(http, f"{base}/console/users"))[0] == 403
            posts = [("/console/users", {"name": "intruder", "role": "admin",
                                         "password": NEW_PASSWORD, "password2": NEW_PASSWORD})]
            for action in ("disable", "enable", "token"):
                posts.append((f"/console/users/{admin.id}/{action}", {}))
            posts.append((f"/console/users/{who.id}/role", {"role": "admin"}))
            posts.append((f"/console/users/{admin.id}/password",
                          {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}))
            for path, data in posts:
                status, _, _ = await post_form(http, base + path, {"csrf": csrf, **data})
                assert status == 403, path
    async with service.runtime.sessions() as db:
        accounts = {u.name: u for u in await users.list_all(db)}
    assert set(accounts) == {admin.name, reviewer.name, supervisor.name}
    assert not accounts[admin.name].disabled and accounts[admin.name].api_token_hash is None
    assert users.password_ok(accounts[admin.name], PASSWORD)
    assert (accounts[reviewer.name].role, accounts[supervisor.name].role) == ("reviewer",
                                                                             "supervisor")


async def test_admin_cannot_disable_or_demote_themself(
        service: Service, admin: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    status, page, _ = await post_form(client, f"{base}/console/users/{admin.id}/disable",
                                      {"csrf": csrf})
    assert status == 400 and "不能停用自己的账号" in page
    status, page, _ = await post_form(client, f"{base}/console/users/{admin.id}/role",
                                      {"csrf": csrf, "role": "reviewer"})
    assert status == 400 and "不能取消自己的管理员角色" in page
    status, page, _ = await post_form(client, f"{base}/console/users/{admin.id}/password",
                                      {"csrf": csrf, "password": NEW_PASSWORD,
                                       "password2": NEW_PASSWORD})
    assert status == 400 and "修改密码" in page  # own password: only with the current one
    me = await _user(service, admin.name)
    assert me.role == "admin" and not me.disabled and users.password_ok(me, PASSWORD)
    assert (await _get(client, f"{base}/console/users"))[0] == 200  # still signed in


async def test_the_last_enabled_admin_is_never_disabled_or_demoted(
        service: Service, admin: Staff, client: aiohttp.ClientSession):
    # Whatever path leads there (the CLI, a race between two admins' pages), storage refuses.
    sessions = service.runtime.sessions
    for change in (lambda db: users.set_disabled(db, admin.name),
                   lambda db: users.set_role(db, admin.name, "supervisor")):
        with pytest.raises(users.LastAdminError, match="最后一个启用的管理员"):
            async with sessions.begin() as db:
                await change(db)
    # Two admins demote each other at the same moment: one of them must stay an admin.
    other = await add_user(service, "admin2", "admin")
    base = service.base_url
    async with _browser() as theirs:
        csrf_mine = await _signed_in(client, base, admin.name)
        csrf_theirs = await _signed_in(theirs, base, other.name)
        results = await asyncio.gather(
            post_form(client, f"{base}/console/users/{other.id}/role",
                      {"csrf": csrf_mine, "role": "reviewer"}),
            post_form(theirs, f"{base}/console/users/{admin.id}/role",
                      {"csrf": csrf_theirs, "role": "reviewer"}))
    statuses = sorted(status for status, _, _ in results)
    assert statuses[0] == 303 and statuses[1] in (400, 403), statuses
    for status, page, _ in results:
        if status == 400:  # the losing request ran alongside and was refused, with the reason
            assert "最后一个启用的管理员" in page
    async with sessions() as db:
        admins = [u for u in await users.list_all(db) if u.role == "admin" and not u.disabled]
    assert len(admins) == 1


async def test_post_without_csrf_changes_nothing(
        service: Service, admin: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    good = await _signed_in(client, base, admin.name)
    for csrf in ({}, {"csrf": "wrong"}, {"csrf": good + "x"}):
        status, _, _ = await post_form(client, f"{base}/console/users",
                                       {**csrf, "name": "sneaky", "role": "admin",
                                        "password": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert status == 403
        for action in ("disable", "token"):
            status, _, _ = await post_form(
                client, f"{base}/console/users/{reviewer.id}/{action}", csrf)
            assert status == 403
        status, _, _ = await post_form(client, f"{base}/console/password",
                                       {**csrf, "current": PASSWORD, "password": NEW_PASSWORD,
                                        "password2": NEW_PASSWORD})
        assert status == 403
    async with service.runtime.sessions() as db:
        assert await users.by_name(db, "sneaky") is None
    them, me = await _user(service, reviewer.name), await _user(service, admin.name)
    assert not them.disabled and them.api_token_hash is None
    assert users.password_ok(me, PASSWORD)


BAD_ADDS = [  # (name, role, password, confirmation, what the page must say)
    ("reviewer1", "reviewer", NEW_PASSWORD, NEW_PASSWORD, "已被使用"),
    ("", "reviewer", NEW_PASSWORD, NEW_PASSWORD, "请填写用户名"),
    ("x" * 65, "reviewer", NEW_PASSWORD, NEW_PASSWORD, "用户名太长"),
    ("wang wu", "reviewer", NEW_PASSWORD, NEW_PASSWORD, "不能包含空格"),
    ("wangwu", "root", NEW_PASSWORD, NEW_PASSWORD, "没有这个角色"),
    ("wangwu", "reviewer", "short", "short", "密码太短"),
    ("wangwu", "reviewer", NEW_PASSWORD, "different!!", "两次输入的密码不一致"),
]


async def test_bad_input_gets_400_with_what_to_fix(
        service: Service, admin: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, admin.name)
    for name, role, password, password2, message in BAD_ADDS:
        status, page, _ = await post_form(client, f"{base}/console/users", {
            "csrf": csrf, "name": name, "role": role, "password": password,
            "password2": password2})
        assert status == 400 and message in page and 'id="users-error"' in page, message
        if name == "reviewer1":
            assert 'value="reviewer1"' in page  # the form keeps what was typed
    async with service.runtime.sessions() as db:
        assert len(await users.list_all(db)) == 2  # admin1 and reviewer1 only
    for path in ("/console/users/999999/disable", f"/console/users/{reviewer.id}/explode"):
        status, _, _ = await post_form(client, base + path, {"csrf": csrf})
        assert status == 404


async def test_own_password_change(
        service: Service, reviewer: Staff, supervisor: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, reviewer.name)
    url = f"{base}/console/password"
    async with _browser() as laptop:  # the same reviewer signed in somewhere else
        await _signed_in(laptop, base, reviewer.name)
        status, page, _ = await _get(client, url)
        assert status == 200 and "当前密码" in page
        status, page, _ = await post_form(client, url, {
            "csrf": csrf, "current": "not my password", "password": NEW_PASSWORD,
            "password2": NEW_PASSWORD})
        assert status == 400 and "当前密码不正确" in page
        status, page, _ = await post_form(client, url, {
            "csrf": csrf, "current": PASSWORD, "password": NEW_PASSWORD, "password2": "other"})
        assert status == 400 and "两次输入的密码不一致" in page
        assert users.password_ok(await _user(service, reviewer.name), PASSWORD)
        status, _, location = await post_form(client, url, {
            "csrf": csrf, "current": PASSWORD, "password": NEW_PASSWORD,
            "password2": NEW_PASSWORD})
        assert status == 303 and location == "/console/password"
        status, page, path = await _get(client, f"{base}/console")
        assert status == 200 and path == "/console"  # this session goes on
        assert (await _get(laptop, f"{base}/console"))[2] == "/console/login"  # that one ended
        assert (await login(laptop, base, reviewer.name, PASSWORD)).status == 401
        assert (await login(laptop, base, reviewer.name, NEW_PASSWORD)).status == 302
    async with service.runtime.sessions() as db:
        failed = await audit.recent(db, actions=("password-change-failed",))
    assert [e.actor for e in failed] == [reviewer.name]
    async with _browser() as boss:
        await _signed_in(boss, base, supervisor.name)
        page = await _audit_page(service, boss)
    assert "修改本人密码" in page and "修改密码失败" in page
    assert NEW_PASSWORD not in page and PASSWORD not in page


async def test_guessing_the_current_password_is_throttled_like_a_login(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    csrf = await _signed_in(client, base, reviewer.name)
    url = f"{base}/console/password"
    wrong = {"csrf": csrf, "current": "guess", "password": NEW_PASSWORD,
             "password2": NEW_PASSWORD}
    for _ in range(5):
        assert (await post_form(client, url, wrong))[0] == 400
    status, page, _ = await post_form(client, url, {**wrong, "current": PASSWORD})
    assert status == 429 and "尝试次数过多" in page
    assert users.password_ok(await _user(service, reviewer.name), PASSWORD)
