"""INSERT … ON CONFLICT DO NOTHING for both backends.

Idempotent intake rests on unique keys: storing the same IMAP UID, Maildir file or form token a
second time must be a no-op, not an error that rolls back the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import UpdateBase


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


def _bound(processor: Callable[[Any], Any] | None, values: list[Any]) -> list[Any]:
    """``values`` through a bind processor, each distinct object once (by identity: the values
    are alive in the caller's rows meanwhile, so no id is reused)."""
    if processor is None:
        return values
    done: dict[int, Any] = {}
    out = []
    for value in values:
        key = id(value)
        if key not in done:
            done[key] = processor(value)
        out.append(done[key])
    return out


def bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How ``dialect`` turns a value of ``type_`` into a driver parameter, for statements run
    with ``exec_driver_sql``. The type as this dialect has it: SQLite's DATETIME writes
    SQLAlchemy's own text form, which the generic type's processor leaves to the driver's
    adapter ("…+00:00", compared by SQLite as text against the rows other writers made)."""
    return type_.dialect_impl(dialect).bind_processor(dialect)


class Bulk:
    """A write statement with named parameters, run as the driver's own ``executemany``.

    ``session.execute(stmt, rows)`` builds every row's parameters in Python (the compiled
    statement's ``construct_params`` and the bind processors, row by row, through the statement
    cache): for the intake's batch of a thousand repeat links that cost more than SQLite's own
    work of inserting them. Here the statement is compiled once per dialect (``build`` makes it
    for one), each row becomes a tuple with the same bind processors applied, and the driver
    loops over them (as ``raw_intake.store_letters`` does for the web form's batch). For
    statements that return nothing: an ``executemany`` has no RETURNING."""

    def __init__(self, build: Callable[[Dialect], UpdateBase]) -> None:
        self._build = build
        self._compiled: dict[type[Dialect], tuple[str, list[tuple[str, Any]], bool]] = {}

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str]) -> Bulk:
        """A plain INSERT into ``table`` of ``columns``, each row's value named as its column."""
        return cls(lambda _dialect: insert(table).values({c: bindparam(c) for c in columns}))

    def _for(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any]], bool]:
        compiled = self._compiled.get(type(dialect))
        if compiled is None:
            stmt = self._build(dialect).compile(dialect=dialect)
            names = list(stmt.positiontup or stmt.binds)
            params = [(n, bind_processor(stmt.binds[n].type, dialect)) for n in names]
            compiled = self._compiled[type(dialect)] = (stmt.string, params, stmt.positional)
        return compiled

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Run the statement once per row (dicts keyed by parameter name) on ``conn``."""
        if not rows:
            return
        sql, params, positional = self._for(conn.dialect)
        # Column by column (the loops run in C), each value object bound once: a batch's rows
        # share their created_at, and binding it row by row was most of a link's cost.
        columns = [_bound(p, list(map(itemgetter(n), rows))) for n, p in params]
        if positional:
            conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
        else:
            names = [n for n, _ in params]
            conn.exec_driver_sql(sql, [dict(zip(names, values, strict=True))
                                       for values in zip(*columns, strict=True)])

    async def run_in(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """:meth:`run` in a session's transaction, after what the session holds unflushed (as
        ``session.execute`` would: an event added alone keeps its place before a batch's)."""
        def flush_and_run(sync: Any) -> None:
            if sync.autoflush:
                sync.flush()
            self.run(sync.connection(), rows)

        if rows:
            await session.run_sync(flush_and_run)
