"""The repeat index of the running service: built once from the open cases, then kept current.

``handlers.repeats.RepeatIndex`` holds the open cases of the look-back window in memory for the
store step's near-duplicate queries (handlers get it through ``Context.repeats``, no global).
The runtime owns it (``Runtime.repeats``): the intake worker builds it before it files its
first letter, the store step inserts each new letter, the casework actions take a case out when
it closes or is merged and put it back when it is reopened, and the store step prunes what has
left the window. Letters stored before migration 0009 get their writer's keys here, once.

The prepare processes import this module for :func:`shingler_for` and never load SQLAlchemy:
the storage modules are imported where the database is used. Built in a thread: the index's set-up (the report's text, the n-grams common to all letters)
takes about a second and signing an open case about 0.4 ms, which must not hold up the pages.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.config import Settings
from handlers.repeats import RepeatIndex, Shingler, load_report_text, sender_keys, shipped_common
from storage.clock import utcnow

if TYPE_CHECKING:
    from storage.db import Sessions
    from storage.repeats import CaseText

log = logging.getLogger(__name__)


def empty_index(settings: Settings) -> RepeatIndex:
    """An index with no case in it, as configured (``[repeats]``, the configured report)."""
    s = settings.repeats
    return RepeatIndex(s.threshold, s.num_perm, s.ngram, load_report_text(settings.report_file))


def shingler_for(settings: Settings) -> Shingler:
    """The shingler :func:`empty_index`'s index has, without the index (a prepare process
    signs letters with it)."""
    s = settings.repeats
    return Shingler(s.ngram, load_report_text(settings.report_file), shipped_common(s.ngram),
                    s.num_perm)


async def key_old_letters(sessions: Sessions, settings: Settings) -> int:
    """Give the open cases stored before migration 0009 their writer's keys; how many."""
    from storage import repeats

    since = utcnow() - timedelta(days=settings.repeats.window_days)
    after, done = 0, 0
    while True:
        async with sessions.begin() as db:
            rows = await repeats.unkeyed(db, since, after=after)
            if not rows:
                return done
            keys = [(sid, k.address, k.phone) for sid, addr, phone in rows
                    if (k := sender_keys(addr, phone, settings.repeats.phone_area))
                    and (k.address or k.phone)]
            await repeats.set_sender_keys(db, keys)
        after, done = rows[-1][0], done + len(keys)


async def build(sessions: Sessions, settings: Settings) -> RepeatIndex:
    """The index of the open cases received in the window (machine mail and spam left out)."""
    from storage import repeats

    index = await asyncio.to_thread(empty_index, settings)
    keyed = await key_old_letters(sessions, settings)
    since = utcnow() - timedelta(days=settings.repeats.window_days)

    def add(batch: list[CaseText]) -> None:
        for case in batch:
            index.insert(case.id, index.sign(case.subject, case.text), case.received_at)

    async with sessions() as db:
        async for batch in repeats.open_texts(db, since):
            await asyncio.to_thread(add, batch)
    log.info("repeat index built: %d open cases, %d old letters keyed", len(index), keyed)
    return index
