"""SQLite write transactions of one process take turns instead of sleeping on a locked file."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage import intake as raw_intake
from storage.models import RawIntake


async def test_concurrent_writers_all_commit(db, db_url: str):
    async def writer(n: int) -> None:
        async with db.begin() as s:
            await raw_intake.add(s, channel="web", source_key=f"web:turn{n}",
                                 payload={"fields": {"body": str(n)}})
            await asyncio.sleep(0.01)  # hold the transaction open across an await

    await asyncio.gather(*(writer(n) for n in range(20)))
    async with db() as s:
        assert await s.scalar(select(func.count()).select_from(RawIntake)) == 20


async def test_a_write_inside_a_write_fails_at_once(db, db_url: str):
    """On SQLite the inner one would wait for the outer one to commit, i.e. forever."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL runs nested transactions side by side")
    async with db.begin():
        with pytest.raises(RuntimeError, match="inside another"):
            async with asyncio.timeout(2):
                async with db.begin():
                    pass
