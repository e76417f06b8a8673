"""Outbox worker: delivers queued mail with aiosmtplib, exactly once where SMTP allows it.

A batch of rows is claimed (a lease in the database) and sent outside any transaction over up to
``smtp.connections`` connections side by side, each message marked sent as soon as the relay took
it.
Temporary trouble — a refused or dropped connection, a 4xx answer — schedules a retry with
exponential backoff; a 5xx answer is permanent and marks the row failed with the server's reason.
A crash between the server's acceptance and our commit (at most one message per connection) can
only lead to the same bytes (same Message-ID) being sent again once the lease expires; never to a
message being lost.

With no SMTP host configured, each message is written to ``var/outbox/`` as an .eml file instead,
so a new user can read what the service would have sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from pathlib import Path

import aiosmtplib

from bot.runtime import Runtime, wait_event
from storage import outbox
from storage.db import utcnow
from storage.models import Outbox

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
BATCH = 50
MAX_DELAY = timedelta(hours=2)


class PermanentFailure(Exception):
    pass


def _backoff(rt: Runtime, attempts: int) -> timedelta:
    base = rt.settings.smtp.retry_base_seconds
    return min(timedelta(seconds=base * (2**attempts)), MAX_DELAY)


def _eml_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id)[:200] + ".eml"


def _write_eml(rt: Runtime, row: Outbox) -> None:
    folder = Path(rt.settings.var_dir) / "outbox"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _eml_name(row.message_id)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(row.message)
    tmp.replace(target)


async def _mark_sent(rt: Runtime, row_id: int) -> None:
    async with rt.sessions.begin() as session:
        await outbox.mark_sent(session, row_id)


async def _smtp_send(rt: Runtime, rows: list[Outbox]) -> dict[int, Exception | None]:
    """Send rows over one connection; per row, None for success or the exception.

    Each accepted message is marked sent at once, in its own commit: a crash in the middle of a
    batch can then resend at most the one message the server had just accepted.
    """
    s = rt.settings.smtp
    results: dict[int, Exception | None] = {}
    client = aiosmtplib.SMTP(
        hostname=s.host,
        port=s.port,
        use_tls=s.ssl,
        start_tls=s.starttls if s.starttls else False,
        timeout=s.timeout,
        username=s.user or None,
        password=s.password.get_secret_value() or None,
    )
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return {row.id: exc for row in rows}
    try:
        for row in rows:
            try:
                await client.sendmail(row.sender, [row.recipient], row.message)
                await _mark_sent(rt, row.id)
                results[row.id] = None
            except aiosmtplib.SMTPRecipientsRefused as exc:
                results[row.id] = exc
            except aiosmtplib.SMTPResponseException as exc:
                results[row.id] = exc
                if exc.code == 421:
                    break
            except (aiosmtplib.SMTPException, OSError) as exc:
                results[row.id] = exc
                break
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
    for row in rows:
        results.setdefault(row.id, ConnectionError("not attempted: connection lost"))
    return results


async def _smtp_send_parallel(rt: Runtime, rows: list[Outbox]) -> dict[int, Exception | None]:
    """Deal the rows out to ``smtp.connections`` connections and send over all at once."""
    n = min(rt.settings.smtp.connections, len(rows))
    parts = await asyncio.gather(*(_smtp_send(rt, rows[k::n]) for k in range(n)))
    return {row_id: result for part in parts for row_id, result in part.items()}


def _is_permanent(exc: Exception) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code >= 500
    return False


def _describe(exc: Exception) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{exc.__class__.__name__}: {exc}"


async def deliver_due(rt: Runtime) -> int:
    """Claim and deliver one batch; return how many rows were claimed."""
    async with rt.sessions.begin() as session:
        rows = await outbox.claim_due(session, limit=BATCH, lease=LEASE)
    if not rows:
        return 0
    if rt.settings.smtp.host:
        results = await _smtp_send_parallel(rt, rows)
    else:
        results = {}
        for row in rows:
            try:
                await asyncio.to_thread(_write_eml, rt, row)
                await _mark_sent(rt, row.id)
                results[row.id] = None
            except OSError as exc:
                results[row.id] = exc
    async with rt.sessions.begin() as session:
        for row in rows:
            exc = results[row.id]
            if exc is None:
                continue  # marked sent as soon as it was accepted
            if _is_permanent(exc) or row.attempts + 1 >= rt.settings.smtp.max_attempts:
                log.warning("outbox %s failed permanently: %s", row.id, _describe(exc))
                await outbox.mark_failed(session, row.id, _describe(exc))
            else:
                log.info("outbox %s retry: %s", row.id, _describe(exc))
                await outbox.mark_retry(session, row.id, _describe(exc),
                                        _backoff(rt, row.attempts))
    return len(rows)


async def _sleep_until_due(rt: Runtime, ceiling: float) -> None:
    async with rt.sessions() as session:
        due = await outbox.next_due_at(session)
    delay = ceiling if due is None else max(0.05, min(ceiling, (due - utcnow()).total_seconds()))
    rt.outbox_wakeup.clear()
    await wait_event(rt.outbox_wakeup, delay)


async def run(rt: Runtime, poll_seconds: float = 2.0) -> None:
    """Forever: deliver what is due, sleep until the next row is due or new work arrives."""
    state = rt.worker("outbox")
    while not rt.stopping.is_set():
        try:
            claimed = await deliver_due(rt)
            state.state, state.last_success = "running", utcnow()
            if claimed:
                continue
            await _sleep_until_due(rt, poll_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.state, state.last_error = "error", exc.__class__.__name__
            log.error("outbox worker error: %s", exc.__class__.__name__, exc_info=True)
            await asyncio.sleep(poll_seconds)
