"""Staff accounts of the console: names, passwords, roles, API tokens.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's recommendation), so a
stolen database does not give away staff passwords. API tokens are 256-bit random values: a plain
SHA-256 of such a token cannot be brute-forced and, unlike a salted hash, can be looked up by its
unique index in one query.

The rules for a name and a new password live here, once, for both the CLI (``feedback-bot user``)
and the console's account page; their messages are in Chinese because staff read them. So does
the one invariant about roles: the console always keeps at least one enabled admin.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import User

ROLES = ("reviewer", "supervisor", "admin")
TOKEN_PREFIX = "fbk_"
NAME_MAX = 64  # the column's width
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 would take more; a bound keeps one request's hashing cheap
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class UserError(ValueError):
    """A request about accounts that cannot be done (unknown role, name taken ...); the message
    says, in Chinese, what to fix."""


class LastAdminError(UserError):
    """The change would leave no enabled admin, and so nobody to manage accounts in the console."""


def check_name(name: str) -> str:
    """The account name to store (surrounding spaces dropped), or UserError saying what is wrong."""
    name = name.strip()
    if not name:
        raise UserError("请填写用户名。")
    if len(name) > NAME_MAX:
        raise UserError(f"用户名太长（最多 {NAME_MAX} 个字符）。")
    if any(c.isspace() or not c.isprintable() for c in name):
        raise UserError("用户名不能包含空格或控制字符。")
    return name


def check_password(password: str, again: str | None = None) -> None:
    """UserError unless ``password`` may be set; ``again`` is the confirmation, when asked for."""
    if again is not None and again != password:
        raise UserError("两次输入的密码不一致。")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"密码太短（至少 {MIN_PASSWORD} 个字符）。")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"密码太长（最多 {MAX_PASSWORD} 个字符）。")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"没有这个角色：{role!r}（可选 {'、'.join(ROLES)}）。")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_ok(user: User | None, password: str) -> bool:
    """True if ``user`` exists, is enabled and ``password`` is theirs (constant work otherwise)."""
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and not user.disabled


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add(session: AsyncSession, name: str, role: str, password: str) -> User:
    name = check_name(name)
    check_role(role)
    check_password(password)
    if await by_name(session, name) is not None:
        raise UserError(f"用户名“{name}”已被使用，请换一个。")
    user = User(name=name, role=role, password_hash=hash_password(password), disabled=False,
                created_at=utcnow())
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same name added at the same moment by someone else
        raise UserError(f"用户名“{name}”已被使用，请换一个。") from exc
    return user


async def by_name(session: AsyncSession, name: str) -> User | None:
    return await session.scalar(select(User).where(User.name == name))


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def list_all(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.name)))


async def _require(session: AsyncSession, name: str) -> User:
    user = await by_name(session, name)
    if user is None:
        raise UserError(f"没有用户“{name}”。")
    return user


async def _enabled_admins(session: AsyncSession, *, lock: bool = False) -> set[int]:
    stmt = select(User.id).where(User.role == "admin", User.disabled.is_(False))
    # FOR UPDATE (PostgreSQL; SQLite ignores it: see the check after the write) makes two admins
    # demoting each other at once take turns, so the second sees the first one's change.
    return set(await session.scalars(stmt.with_for_update() if lock else stmt))


async def _keep_an_admin(session: AsyncSession, user: User,
                         change: Callable[[User], None]) -> None:
    """Apply ``change`` to ``user`` unless that leaves no enabled admin (LastAdminError)."""
    if user.role != "admin" or user.disabled:  # not an enabled admin: the count cannot drop
        change(user)
        return
    message = "不能停用或降级最后一个启用的管理员账号：请先为另一人设置管理员角色。"
    admins = await _enabled_admins(session, lock=True)
    if user.id in admins and not admins - {user.id}:
        raise LastAdminError(message)
    change(user)
    await session.flush()
    # Checked again after the write, which on SQLite holds the write lock: a concurrent change
    # that slipped in between the first check and the write is seen here and rolled back.
    if not await _enabled_admins(session):
        raise LastAdminError(message)


async def set_disabled(session: AsyncSession, name: str, disabled: bool = True) -> User:
    user = await _require(session, name)

    def apply(u: User) -> None:
        u.disabled = disabled
        u.session_gen += 1  # a cookie from before a disable must not come back with an enable
        if disabled:
            u.api_token_hash = None

    if disabled:
        await _keep_an_admin(session, user, apply)
    else:
        apply(user)
    return user


async def set_role(session: AsyncSession, name: str, role: str) -> User:
    check_role(role)
    user = await _require(session, name)

    def apply(u: User) -> None:
        u.role = role

    if role != "admin":
        await _keep_an_admin(session, user, apply)
    else:
        apply(user)
    return user


async def set_password(session: AsyncSession, name: str, password: str) -> User:
    check_password(password)
    user = await _require(session, name)
    user.password_hash = hash_password(password)
    user.session_gen += 1  # every session signed in with the old password ends
    return user


async def end_sessions(session: AsyncSession, user_id: int) -> int:
    """End every console session of this account (sign-out); the new generation."""
    await session.execute(update(User).where(User.id == user_id)
                          .values(session_gen=User.session_gen + 1))
    return int(await session.scalar(select(User.session_gen).where(User.id == user_id)) or 0)


async def issue_token(session: AsyncSession, name: str) -> str:
    """A new API token for ``name`` (replacing any earlier one); only its hash is kept."""
    user = await _require(session, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.api_token_hash = hash_token(token)
    return token


async def by_token(session: AsyncSession, token: str) -> User | None:
    """The enabled user holding this API token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    user = await session.scalar(select(User).where(User.api_token_hash == hash_token(token)))
    return user if user is not None and not user.disabled else None


def check_email(email: str) -> str:
    """A staff member's reminder address, trimmed; "" clears it."""
    email = email.strip()
    if email and (email.count("@") != 1 or len(email) > 320
                  or any(c.isspace() or c in "<>\"',;" for c in email)):
        raise UserError("电子邮箱格式不正确，例如：zhang@example.gov.cn")
    return email


async def set_email(session: AsyncSession, name: str, email: str) -> User:
    """Where ``name``'s morning reminder of due and overdue cases goes ("" : nowhere)."""
    user = await _require(session, name)
    user.email = check_email(email) or None
    return user
