"""Alembic environment: runs migrations on the async engine the service uses."""

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    render_batch = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=render_batch
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None, "storage.db.alembic_config sets sqlalchemy.url"
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def _in_thread() -> None:
    asyncio.run(_online())


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _in_thread()
    else:  # called from inside a loop (tests): run in a helper thread with its own loop
        import threading

        t = threading.Thread(target=_in_thread)
        t.start()
        t.join()
