"""Staff accounts of the console: passwords, roles, API tokens.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's recommendation), so a
stolen database does not give away staff passwords. API tokens are 256-bit random values: a plain
SHA-256 of such a token cannot be brute-forced and, unlike a salted hash, can be looked up by its
unique index in one query.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import User

ROLES = ("reviewer", "supervisor", "admin")
TOKEN_PREFIX = "fbk_"
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class UserError(ValueError):
    """A request about accounts that cannot be done (unknown role, name taken ...)."""


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
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if await by_name(session, name) is not None:
        raise UserError(f"user {name!r} exists")
    user = User(name=name, role=role, password_hash=hash_password(password), disabled=False,
                created_at=utcnow())
    session.add(user)
    await session.flush()
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
        raise UserError(f"no user {name!r}")
    return user


async def set_disabled(session: AsyncSession, name: str, disabled: bool = True) -> User:
    user = await _require(session, name)
    user.disabled = disabled
    if disabled:
        user.api_token_hash = None
    return user


async def set_password(session: AsyncSession, name: str, password: str) -> User:
    user = await _require(session, name)
    user.password_hash = hash_password(password)
    return user


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
