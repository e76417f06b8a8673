"""The mailbox lease: one holder at a time, taken over once it expires, handed back on release."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage import mailbox
from storage.db import make_engine, sessionmaker

NAME = "imap:INBOX"


async def test_one_holder_until_expiry(db_url: str):
    engine = make_engine(db_url)
    sessions = sessionmaker(engine)

    async def take(holder: str, ttl: float = 60) -> bool:
        async with sessions.begin() as s:
            return await mailbox.acquire_lease(s, NAME, holder, timedelta(seconds=ttl))

    try:
        # Two instances starting together: exactly one wins.
        assert sorted(await asyncio.gather(take("a", 0.3), take("b", 0.3))) == [False, True]
        async with sessions() as s:
            first, _ = await mailbox.lease_holder(s, NAME) or ("", None)
        second = "b" if first == "a" else "a"
        assert await take(first, 0.3)          # renewing is fine
        assert not await take(second)           # the other must wait
        await asyncio.sleep(0.4)                # the holder died: its lease runs out
        assert await take(second)
        assert not await take(first)
        async with sessions.begin() as s:
            await mailbox.release_lease(s, NAME, second)
        assert await take(first)                # handed over at once after a clean stop
    finally:
        await engine.dispose()
