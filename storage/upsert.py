"""INSERT … ON CONFLICT DO NOTHING for both backends.

Idempotent intake rests on unique keys: storing the same IMAP UID, Maildir file or form token a
second time must be a no-op, not an error that rolls back the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignore(session: AsyncSession, model: Any, values: dict[str, Any]) -> int | None:
    """Insert a row unless a unique key already holds one; return the new primary key or None."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    mod = postgresql if dialect == "postgresql" else sqlite
    stmt = mod.insert(model).values(**values).on_conflict_do_nothing().returning(model.id)
    result = await session.execute(stmt)
    return result.scalar_one_or_none()
