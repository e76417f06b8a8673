"""PostgreSQL briefly locked: the form answers 503 with Retry-After, nothing is half-written, and
the same form goes through once the lock is gone."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
from sqlalchemy import func, select, text

from bot.app import start
from storage.db import make_engine
from storage.models import RawIntake, Submission
from testing.postgres import Postgres
from tests.bot.helpers import filed, form_token, tracking_no
from tests.conftest import make_settings

LETTER = "区法院执行局的电话一直打不通，判决生效半年了还没有执行。"


async def test_locked_postgres_gives_503_then_accepts(postgres: Postgres, pg_template: str,
                                                      tmp_path: Path):
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}", template=pg_template)
    service = await start(make_settings(url, tmp_path))
    locker = make_engine(url)
    try:
        async with aiohttp.ClientSession() as http:
            token = await form_token(http, service.base_url)
            async with locker.connect() as conn:
                await conn.execute(text("BEGIN"))
                await conn.execute(text("LOCK TABLE raw_intake IN ACCESS EXCLUSIVE MODE"))
                async with http.post(f"{service.base_url}/feedback",
                                     data={"token": token, "body": LETTER}) as resp:
                    assert resp.status == 503
                    assert resp.headers["Retry-After"] == "60"
                    assert "系统繁忙" in await resp.text()
                await conn.execute(text("ROLLBACK"))
            async with service.runtime.sessions() as s:
                assert await s.scalar(select(func.count()).select_from(RawIntake)) == 0
                assert await s.scalar(select(func.count()).select_from(Submission)) == 0
            async with http.post(f"{service.base_url}/feedback",
                                 data={"token": token, "body": LETTER}) as resp:
                assert resp.status == 200
                tracking_no(await resp.text())
        await filed(service)
        async with service.runtime.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Submission)) == 1
    finally:
        await locker.dispose()
        await service.stop()
