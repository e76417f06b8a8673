"""Housekeeping: SQLite gets fresh planner statistics, and the worker stops when asked."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from bot.runtime import Runtime
from bot.workers import maintenance
from storage import submissions
from storage.db import refresh_statistics, upgrade_async, utcnow


async def test_statistics_are_written_on_sqlite_and_left_to_postgres(settings):
    await upgrade_async(settings.database.url)
    rt = Runtime.create(settings, with_classifier=False)
    try:
        async with rt.sessions.begin() as s:
            for i in range(30):
                await submissions.add(s, tracking_no=f"FK-STAT-{i:04d}", channel="web",
                                      subject="", text="路灯坏了。", received_at=utcnow())
        task = asyncio.create_task(maintenance.run(rt, first_delay=0.0, interval=3600))
        sqlite = rt.engine.dialect.name == "sqlite"
        for _ in range(100):
            if rt.worker("maintenance").last_success:
                break
            await asyncio.sleep(0.05)
        assert rt.worker("maintenance").state == "running"
        if sqlite:
            async with rt.sessions() as s:
                rows = (await s.execute(text(
                    "SELECT stat FROM sqlite_stat1 WHERE tbl = 'submissions'"))).all()
            assert rows and all(r[0].startswith("30") for r in rows)  # 30 letters counted
        else:
            assert await refresh_statistics(rt.engine) is False
        rt.request_stop()
        await asyncio.wait_for(task, 5)
    finally:
        await rt.close()
