"""Housekeeping on a clock: fresh query-planner statistics for SQLite, once a day.

The console's newest-first pages and the digest's counts are planned from the statistics that
``ANALYZE`` writes; a database that grew from empty to a million letters without them is planned
as if it were small (``storage.db.refresh_statistics``). The first run is a few minutes after the
start, so that a restart does not pay it at once, then every ``INTERVAL``.
"""

from __future__ import annotations

import logging

from bot.runtime import Runtime, wait_event
from storage.db import refresh_statistics, utcnow

log = logging.getLogger(__name__)
FIRST_DELAY = 300.0
INTERVAL = 24 * 3600.0


async def run(rt: Runtime, first_delay: float = FIRST_DELAY, interval: float = INTERVAL) -> None:
    state = rt.worker("maintenance")
    state.state = "waiting"
    delay = first_delay
    while not rt.stopping.is_set():
        await wait_event(rt.stopping, delay)
        if rt.stopping.is_set():
            return
        try:
            if await refresh_statistics(rt.engine):
                log.info("database statistics refreshed")
            state.state, state.last_success = "running", utcnow()
        except Exception as exc:  # a locked database: try again at the next interval
            state.state, state.last_error = "error", exc.__class__.__name__
            log.warning("statistics refresh failed: %s", exc.__class__.__name__)
        delay = interval
