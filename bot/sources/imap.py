"""IMAP poller: takes mail from the configured mailbox into the raw intake table.

Flow per cycle, for the folder ``imap.folder`` (the blocking IMAP calls run in this poller's own
thread, see ``bot.sources.imap_client``):

1. mail already stored but still in the folder (a crash after commit) is only marked and moved;
2. new UIDs (above the cursor for this UIDVALIDITY) are fetched in batches with ``BODY.PEEK[]``;
3. each batch is stored, exact bytes, in one transaction together with the advanced cursor;
4. only after the commit is the mail flagged ``\\Seen`` and moved to ``imap.processed_folder``;
5. the intake worker is woken, so the mail is classified and acknowledged within seconds.

A crash at any point therefore leads to neither loss (nothing is moved before it is committed)
nor a second submission (a UID at or below the cursor is never stored again; the unique
``source_key`` and the store step's Message-ID check catch the rest). After a UIDVALIDITY change
the server has renumbered the folder: mail whose Message-ID was stored from this folder before
is moved, not stored again.

Between cycles the poller waits in IDLE when the server offers it, else polls every
``imap.poll_seconds``. A cycle that stored mail is followed by another at once: mail that
arrived while it fetched and moved was announced in the answers to those commands, and IDLE
would not announce it again. In IDLE the folder is still searched again when the lease is
renewed (every 20 s) once ``imap.poll_seconds`` have passed, in case an announcement is lost
some other way. Not more often: re-issuing IDLE every 0.5 s was measured to take a letter's
append-to-acknowledgement time from 0.54 to 1.02 s against Dovecot. Every error is logged, shown on /healthz and retried with backoff; the
poller never gives up. With several instances on one database only the holder of the lease
``imap:<folder>`` polls; the others stand by and take over when it stops renewing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.runtime import Runtime
from bot.sources.imap_client import ImapConfigError, MailboxClient
from bot.sources.mailstore import mail_row
from storage import mailbox, raw_intake
from storage.db import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

WORKER = "imap"
LEASE_TTL = 55.0  # seconds; with the 5 s standby check another instance takes over within 60 s
LEASE_RENEW = 20.0
STANDBY_CHECK = 5.0
IDLE_REISSUE = 25 * 60.0  # < 29 min (RFC 2177)
BACKOFF_MAX = 60.0
BATCH_BYTES = 64 * 1024 * 1024  # keep a batch of large mails from filling memory


class LeaseLost(Exception):
    """Another instance holds the mailbox lease now."""


def task_for(settings: Settings) -> Callable[[Runtime], Awaitable[None]] | None:
    """The ``serve`` task for the configured mailbox, or None when no IMAP host is set."""
    if not settings.imap.host:
        return None
    return lambda rt: ImapPoller(rt).run()


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:300]


class ImapPoller:
    """Polls one mailbox for one Runtime; ``run()`` forever, or the parts for tests."""

    def __init__(
        self,
        rt: Runtime,
        *,
        holder: str | None = None,
        lease_ttl: float = LEASE_TTL,
        lease_renew: float = LEASE_RENEW,
        standby_check: float = STANDBY_CHECK,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.rt = rt
        self.s = rt.settings.imap
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_name = f"imap:{self.s.folder}"[:64]
        self.lease_ttl = timedelta(seconds=lease_ttl)
        self.lease_renew = lease_renew
        self.standby_check = standby_check
        self.backoff_max = backoff_max
        self.state = rt.worker(WORKER)
        self.mail = MailboxClient(self.s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
        self._renumbered = False
        self._lease_checked = 0.0
        self._failures = 0

    # -- plumbing ------------------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _key_prefix(self) -> str:
        return f"imap:{self.s.folder}:"

    def _validity_prefix(self) -> str:
        return f"{self._key_prefix()}{self.mail.uidvalidity}:"

    def _source_key(self, uid: int) -> str:
        return f"{self._validity_prefix()}{uid}"

    async def hold_lease(self) -> bool:
        """Take or renew the mailbox lease; False while another instance holds it."""
        async with self.rt.sessions.begin() as session:
            held = await mailbox.acquire_lease(session, self.lease_name, self.holder,
                                               self.lease_ttl)
        self._lease_checked = asyncio.get_running_loop().time()
        return held

    async def _renew_if_due(self) -> None:
        due = asyncio.get_running_loop().time() - self._lease_checked >= self.lease_renew
        if due and not await self.hold_lease():
            raise LeaseLost(self.lease_name)

    # -- the parts -----------------------------------------------------------------------------
    async def connect(self) -> None:
        self.state.state = "connecting"
        await self._call(self.mail.connect)
        if self.mail.server_id is not None:
            log.info("imap: identified to %s (server: %s)", self.s.host,
                     self.mail.server_id.get("name", "?"))
        async with self.rt.sessions() as session:
            self._renumbered = await mailbox.renumbered(session, self.s.folder,
                                                        self.mail.uidvalidity)
        if self._renumbered:
            log.warning("imap: %s has a new UIDVALIDITY %s; known mail is recognised by "
                        "Message-ID", self.s.folder, self.mail.uidvalidity)

    async def close(self) -> None:
        self.mail.interrupt()  # unblocks an IDLE wait still running in the thread
        await self._call(self.mail.close)

    async def cycle(self, *, move: bool = True) -> int:
        """Store what is new and move what is stored; return how many mails were stored.

        ``move=False`` stops after the commit, as a crash before the MOVE would (for tests).
        """
        present = await self._call(self.mail.present)
        async with self.rt.sessions() as session:
            last = await mailbox.last_uid(session, self.s.folder, self.mail.uidvalidity)
        leftovers = [uid for uid in present if uid <= last]
        if leftovers and move:
            log.info("imap: moving %d mails stored before an interruption", len(leftovers))
            await self._call(self.mail.finish, leftovers)
        new = [uid for uid in present if uid > last]
        stored = 0
        for chunk in await self._batches(new):
            await self._renew_if_due()
            fetched = await self._call(self.mail.fetch, chunk)
            ids = await self._store(chunk, fetched)
            stored += len(ids)
            if ids:
                self.rt.intake_wakeup.set()
            if move:
                await self._call(self.mail.finish, sorted(fetched))
        self.state.last_success = utcnow()
        return stored

    async def _batches(self, uids: list[int]) -> list[list[int]]:
        """Split by ``imap.batch_size`` and by bytes, so a batch of big mails stays small."""
        if not uids:
            return []
        sizes = await self._call(self.mail.sizes, uids)
        batches: list[list[int]] = [[]]
        total = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if batches[-1] and (len(batches[-1]) >= self.s.batch_size
                                or total + size > BATCH_BYTES):
                batches.append([])
                total = 0
            batches[-1].append(uid)
            total += size
        return batches

    async def _store(self, chunk: list[int], fetched: dict[int, tuple[bytes, Any]]) -> list[int]:
        """One transaction: the raw rows and the cursor, together."""
        # Read the Message-IDs before the transaction: SQLite has one writer at a time, and
        # the intake worker should not wait while this parses 200 header blocks.
        rows = [mail_row(source_key=self._source_key(uid), raw=fetched[uid][0],
                         received_at=fetched[uid][1])
                for uid in sorted(fetched)]
        async with self.rt.sessions.begin() as session:
            if self._renumbered:
                rows = [r for r in rows if not await self._stored_before(session, r)]
            ids = await raw_intake.add_many(session, rows)
            await mailbox.advance(session, self.s.folder, self.mail.uidvalidity, max(chunk))
        return list(ids.values())

    async def _stored_before(self, session: AsyncSession, row: dict[str, Any]) -> bool:
        """After a UIDVALIDITY change: whether this mail was stored under the old numbering."""
        return bool(row["message_id"]) and await mailbox.known_under_other_validity(
            session, row["message_id"], self._key_prefix(), self._validity_prefix())

    async def wait(self) -> None:
        """Wait until new mail is announced (IDLE) or the poll interval passed."""
        deadline = asyncio.get_running_loop().time() + self.s.poll_seconds
        while True:
            await self._renew_if_due()
            if self.mail.can_idle:
                self.state.state = "idle"
                news = await self._call(self.mail.idle_wait, self.lease_renew, IDLE_REISSUE)
                self.state.last_success = utcnow()
                if news or asyncio.get_running_loop().time() >= deadline:  # lost EXISTS
                    await self._call(self.mail.idle_end)
                    return
                continue
            self.state.state = "polling"
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, self.lease_renew))

    # -- forever -------------------------------------------------------------------------------
    async def _serve_connected(self) -> None:
        await self.connect()
        try:
            while True:
                self.state.state = "running"
                stored = await self.cycle()
                if self._failures:
                    log.info("imap: working again after %d failed attempts", self._failures)
                    self._failures = 0
                if not stored:  # after a busy cycle, look again before waiting (see above)
                    await self.wait()
        finally:
            await self.close()

    async def run(self) -> None:
        """Forever: hold the lease, poll, and recover from every error with backoff."""
        try:
            while True:
                try:
                    if not await self.hold_lease():
                        self.state.state = "standby"
                        await asyncio.sleep(self.standby_check)
                        continue
                    await self._serve_connected()
                except asyncio.CancelledError:
                    raise
                except LeaseLost:
                    log.info("imap: lease %s taken over by another instance", self.lease_name)
                    continue
                except Exception as exc:
                    self._failures += 1
                    self._report(exc)
                    await asyncio.sleep(self._backoff(self._failures))
                    continue
        finally:
            await self._shutdown()

    def _backoff(self, failures: int) -> float:
        base = min(1.0, self.s.poll_seconds)
        return min(self.backoff_max, base * 2 ** min(failures - 1, 16))

    def _report(self, exc: Exception) -> None:
        self.state.state, self.state.last_error = "error", _describe(exc)
        self.rt.metrics.errors.labels(where="imap").inc()
        if isinstance(exc, ImapConfigError):
            log.error("imap: configuration problem: %s", exc)
        else:
            log.warning("imap: %s (retrying)", _describe(exc))

    async def _shutdown(self) -> None:
        self.mail.interrupt()
        self._executor.submit(self.mail.close)
        self._executor.shutdown(wait=False)
        try:
            async with self.rt.sessions.begin() as session:
                await mailbox.release_lease(session, self.lease_name, self.holder)
        except Exception:  # the database may be gone at shutdown; the lease then just expires
            log.debug("imap: could not release the lease", exc_info=True)
        self.state.state = "stopped"
