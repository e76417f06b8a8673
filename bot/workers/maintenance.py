"""Housekeeping on a clock: fresh query-planner statistics for SQLite, once a day.

The console's newest-first pages and the digest's counts are planned from the statistics that
``ANALYZE`` writes; a database that grew from empty to a million letters without them is planned
as if it were small (``storage.db.refresh_statistics``). The first run is a few minutes after the
start, so that a restart does not pay it at once, then every ``INTERVAL``; after a failure (a
locked database) again ``RETRY_AFTER`` later, backing off up to the interval.
"""

from __future__ import annotations

import logging

from bot.runtime import Runtime
from bot.workers import runner
from bot.workers.runner import Next, Worker
from storage.db import refresh_statistics

log = logging.getLogger(__name__)
FIRST_DELAY = 300.0
INTERVAL = 24 * 3600.0
RETRY_AFTER = 300.0


class MaintenanceWorker(Worker):
    name = "maintenance"

    def __init__(self, rt: Runtime, first_delay: float, interval: float) -> None:
        self.rt = rt
        self.first_delay = first_delay
        self.interval = interval
        self.retry_after = min(RETRY_AFTER, interval)  # a locked database: soon again
        self.max_backoff = interval

    async def start(self) -> None:
        self.rt.worker(self.name).state = "waiting"

    async def round(self) -> Next:
        if await refresh_statistics(self.rt.engine):
            log.info("database statistics refreshed")
        return Next(self.interval)


async def run(rt: Runtime, first_delay: float = FIRST_DELAY, interval: float = INTERVAL) -> None:
    await runner.run(rt, MaintenanceWorker(rt, first_delay, interval))
