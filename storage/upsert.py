"""INSERT … ON CONFLICT DO NOTHING for both backends.

Idempotent intake rests on unique keys: storing the same IMAP UID, Maildir file or form token a
second time must be a no-op, not an error that rolls back the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_module(where: AsyncSession | Connection | Dialect) -> Any:
    """The dialect package (for its ``insert`` with ON CONFLICT) of a session, connection or
    dialect."""
    if isinstance(where, Dialect):
        name = where.name
    elif isinstance(where, Connection):
        name = where.dialect.name
    else:
        name = where.bind.dialect.name if where.bind else "sqlite"
    return postgresql if name == "postgresql" else sqlite


async def insert_ignore(session: AsyncSession, model: Any, values: dict[str, Any]) -> int | None:
    """Insert a row unless a unique key already holds one; return the new primary key or None."""
    stmt = dialect_module(session).insert(model).values(**values)
    result = await session.execute(stmt.on_conflict_do_nothing().returning(model.id))
    return result.scalar_one_or_none()


async def insert_ignore_many(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], key: str
) -> dict[Any, int]:
    """Insert many rows in one statement (SQLAlchemy's "insertmanyvalues": a few multi-row
    INSERTs instead of one round trip per row), skipping rows whose unique keys are taken.
    Returns the new primary key by each inserted row's ``key`` column; a key that is missing
    from the result was stored before. ``key`` must be unique among ``rows``."""
    if not rows:
        return {}
    table = model.__table__  # Core executemany: the ORM's bulk layer cost more than the SQL
    stmt = dialect_module(session).insert(table).on_conflict_do_nothing()
    result = await session.execute(stmt.returning(table.c[key], table.c.id), rows)
    return {k: pk for k, pk in result.all()}
