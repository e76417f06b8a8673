"""``serve`` brings the schema up to date in a short child process, so that the running service
does not carry Alembic (its command module, Mako, Pygments: 8 MB for something done once)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from bot.app import upgrade_in_child
from storage.db import alembic_config, make_engine

ROOT = Path(__file__).resolve().parents[2]

UPGRADE_HERE = r"""
import asyncio, sys
from bot.app import upgrade_in_child
asyncio.run(upgrade_in_child(sys.stdin.readline().strip()))
print(sorted(m for m in ("alembic", "mako", "pygments") if m in sys.modules))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database no migration has run on."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/new/feedback.db"
    postgres = request.getfixturevalue("postgres")
    return postgres.create_database(f"n_{uuid.uuid4().hex[:12]}")


async def test_a_new_database_is_brought_up_to_date_without_alembic_in_the_service(
        new_database: str) -> None:
    out = subprocess.run([sys.executable, "-c", UPGRADE_HERE], input=new_database + "\n",
                         capture_output=True, text=True, check=True, timeout=120, cwd=ROOT)
    assert out.stdout.splitlines() == ["[]"]  # migrated, and none of Alembic's modules here
    head = ScriptDirectory.from_config(alembic_config(new_database)).get_current_head()
    engine = make_engine(new_database)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            submissions = (await conn.execute(text("SELECT count(*) FROM submissions"))).scalar()
    finally:
        await engine.dispose()
    assert (version, submissions) == (head, 0)


async def test_a_failed_upgrade_stops_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RuntimeError, match="schema upgrade failed"):
        await upgrade_in_child(f"sqlite+aiosqlite:///{blocker}/feedback.db")
