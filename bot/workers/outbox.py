"""Outbox worker: delivers queued mail with aiosmtplib, exactly once where SMTP allows it.

A batch of rows is claimed (a lease in the database) and sent outside any transaction over up to
``smtp.connections`` connections side by side, each message marked sent as soon as the relay took
it.
Temporary trouble — a refused or dropped connection, a 4xx answer — schedules a retry with
exponential backoff, for ``smtp.retry_hours`` (a day) after the message was queued; a 5xx answer
is permanent and marks the row failed with the server's reason. A crash between the server's
acceptance and our commit (at most one message per connection) can only lead to the same bytes
(same Message-ID) being sent again once the lease expires; never to a message being lost.

Three things are about the relay, not about one message, and are handled for the whole outbox:

- **The relay is unreachable** (refused, timed out, login refused): the worker's state on
  /healthz turns to "error" with the reason until mail goes through again.
- **The provider throttles us.** smtp.163.com answers ``554 DT:SPM`` when it takes our mail for
  spam and rate-limits free mailboxes (``450``/``451``/``554`` with ``RP:``, ``MI:``, ``HL:``
  codes, "frequency", "limited", "too many"). Retrying each message at once would spend every
  message's retries and prolong the block, so the whole outbox pauses (``smtp.
  throttle_pause_seconds``, doubled for each pause in a row, at most 6 h; a row in the database,
  so a restart keeps it) and the messages wait without an attempt being counted.
- **Sending caps** (``smtp.max_per_minute``, ``max_per_day``): counted from the outbox's own
  ``sent_at``, so they hold across restarts.

A message whose address has a non-ASCII local part (``用户@例子.广告``) can only go by SMTPUTF8
(RFC 6531); a relay that does not offer it fails the message for good, and the letter says so in
the console (``flags["ack_failed"]``).

With no SMTP host configured, each message is written to ``var/outbox/`` as an .eml file instead,
so a new user can read what the service would have sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from bot import sms
from bot.runtime import Runtime
from bot.workers import runner
from bot.workers.runner import Next, Worker
from handlers import errors, urgent
from handlers.errors import SenderFault, without_addresses
from handlers.mail.compose import envelope_address
from handlers.notices import SMS
from handlers.reminders import QUIET_PURPOSES
from storage import clock, events, outbox
from storage.db import utcnow
from storage.models import Outbox

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
BATCH = 50
MAX_DELAY = timedelta(hours=2)
MAX_PAUSE = timedelta(hours=6)
STEP_ASIDE = 0.25  # seconds: how often the outbox looks again while citizens are posting

# The provider's words for "you send too much" or "this looks like spam": smtp.163.com's
# DT:SPM (content judged spam), RP:/MI:/HL: codes (rate and frequency limits per sender,
# recipient and connection), and the plain-English answers of other providers.
THROTTLE_WORDS = re.compile(
    r"\b(?:DT:SPM|RP:[A-Z]{2,4}|MI:[A-Z]{2,4}|HL:[A-Z]{2,4})\b|frequen|rate.?limit|limited"
    r"|too many|throttl", re.IGNORECASE)
OUTAGE = "SMTP relay unreachable"
NO_SMTPUTF8 = "收件地址含非 ASCII 字符，只能经 SMTPUTF8 发送，而发信服务器不支持 SMTPUTF8"
# What the letter's console page says when its acknowledgement failed for good.
ACK_FAILED = {"smtputf8": NO_SMTPUTF8 + "，确认邮件未发出",
              "refused": "收件方邮件服务器拒收，确认邮件未发出",
              "expired": "发信重试期满仍未发出，确认邮件未发出"}


class NotAttempted(Exception):
    """A message left unsent because the relay asked the whole outbox to wait."""


class NoSmtpUtf8(SenderFault):
    """The address needs SMTPUTF8 and the relay does not offer it: permanent."""


class AddressRefused(SenderFault):
    """The relay refused the recipient's address for good (a 5xx answer)."""


class Unreachable(Exception):
    """The connection or the login failed: nothing is wrong with the message itself."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(_describe(cause))
        self.cause = cause


def _backoff(rt: Runtime, attempts: int) -> timedelta:
    base = rt.settings.smtp.retry_base_seconds
    # The exponent is capped: with a large max_attempts, 2**attempts seconds would overflow
    # timedelta long after MAX_DELAY had been reached.
    return min(timedelta(seconds=base * (2 ** min(attempts, 24))), MAX_DELAY)


def _eml_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id)[:200] + ".eml"


def _write_eml(rt: Runtime, row: Outbox) -> None:
    folder = Path(rt.settings.var_dir) / "outbox"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _eml_name(row.message_id)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(row.message)
    tmp.replace(target)


async def _write_emls(rt: Runtime, rows: list[Outbox]) -> dict[int, Exception | None]:
    """Write a claimed batch as files in one thread hand-off and mark it sent in one
    transaction. A file has no relay to resend to, so marking each one apart (as SMTP does)
    buys nothing: a crash before the mark rewrites the same files, under the same names. Under
    a sustained rush of form letters (``bench/web_form.py --sustained``) the per-message
    transactions were nine in ten of the service's write turns, and the form's batch queued
    behind them."""
    def write_all() -> dict[int, Exception | None]:
        results: dict[int, Exception | None] = {}
        for row in rows:
            try:
                _write_eml(rt, row)
                results[row.id] = None
            except OSError as exc:
                results[row.id] = exc
        return results

    results = await asyncio.to_thread(write_all)
    written = [row_id for row_id, exc in results.items() if exc is None]
    if written:
        async with rt.sessions.begin() as session:
            await outbox.mark_sent_many(session, written)
    return results


async def _mark_sent(rt: Runtime, row_id: int) -> None:
    async with rt.sessions.begin() as session:
        await outbox.mark_sent(session, row_id)


def _answers(exc: Exception) -> list[tuple[int, str]]:
    if isinstance(exc, Unreachable):
        exc = exc.cause
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return [(r.code, r.message) for r in exc.recipients]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return [(exc.code, exc.message)]
    return []


def is_throttle(exc: Exception | None) -> bool:
    """Whether the relay's answer says that it throttles us (not that a message is bad)."""
    return exc is not None and any(code >= 400 and THROTTLE_WORDS.search(message or "")
                                   for code, message in _answers(exc))


async def _send_one(client: aiosmtplib.SMTP, row: Outbox) -> None:
    sender, sender_utf8 = envelope_address(row.sender)
    recipient, utf8 = envelope_address(row.recipient)
    if not (utf8 or sender_utf8):
        await client.sendmail(sender, [recipient], row.message)
        return
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    if not client.supports_extension("smtputf8"):
        raise NoSmtpUtf8(NO_SMTPUTF8)
    # The headers are raw UTF-8 (RFC 6532): 8-bit content, announced as such (RFC 6152); a
    # server offering SMTPUTF8 must offer 8BITMIME too (RFC 6531 section 3.1).
    options = ["SMTPUTF8"] + (["BODY=8BITMIME"] if client.supports_extension("8bitmime") else [])
    await client.sendmail(sender, [recipient], row.message, mail_options=options)


async def _smtp_send(rt: Runtime, rows: list[Outbox],
                     stop: asyncio.Event) -> dict[int, Exception | None]:
    """Send rows over one connection; per row, None for success or the exception.

    Each accepted message is marked sent at once, in its own commit: a crash in the middle of a
    batch can then resend at most the one message the server had just accepted. A throttling
    answer sets ``stop``, which the other connections of the batch heed before their next
    message.
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
        if is_throttle(exc):  # e.g. "421 HL:ICC" at the greeting: too many connections
            stop.set()
            return {row.id: exc for row in rows}
        return {row.id: Unreachable(exc) for row in rows}
    try:
        for row in rows:
            if stop.is_set():
                break
            try:
                await _send_one(client, row)
                await _mark_sent(rt, row.id)
                results[row.id] = None
            except NoSmtpUtf8 as exc:
                results[row.id] = exc
            except aiosmtplib.SMTPRecipientsRefused as exc:
                results[row.id] = exc
                if is_throttle(exc):
                    stop.set()
            except aiosmtplib.SMTPResponseException as exc:
                results[row.id] = exc
                if is_throttle(exc):
                    stop.set()
                elif exc.code == 421:
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
        results.setdefault(row.id, NotAttempted() if stop.is_set()
                           else ConnectionError("not attempted: connection lost"))
    return results


async def _smtp_send_parallel(rt: Runtime, rows: list[Outbox]) -> dict[int, Exception | None]:
    """Deal the rows out to ``smtp.connections`` connections and send over all at once."""
    n = min(rt.settings.smtp.connections, len(rows))
    stop = asyncio.Event()
    parts = await asyncio.gather(*(_smtp_send(rt, rows[k::n], stop) for k in range(n)))
    return {row_id: result for part in parts for row_id, result in part.items()}


def _is_permanent(exc: Exception) -> bool:
    if isinstance(exc, NoSmtpUtf8 | sms.SmsRefused):
        return True
    if isinstance(exc, Unreachable):
        return False  # a refused login (535) is our configuration, not the message
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code >= 500
    return False


def _describe(exc: Exception) -> str:
    if isinstance(exc, NoSmtpUtf8 | Unreachable | sms.SmsRefused | sms.SmsUnavailable):
        return str(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{exc.__class__.__name__}: {exc}"


@dataclass
class Hold:
    """Why the outbox sends nothing (or less) now, and until when."""

    limit: int                 # how many messages may be claimed now
    until: datetime | None     # when more may go (None: not held)
    reason: str | None         # in Chinese, for staff
    strikes: int = 0           # the provider's pauses in a row (0: none since mail went out)
    paused: str | None = None  # the provider's answer, while its pause lasts


async def hold(rt: Runtime, session: AsyncSession) -> Hold:
    """The provider's pause and the sending caps, as they stand now."""
    now = utcnow()
    paused = await outbox.pause_state(session)
    strikes = paused.strikes if paused is not None else 0
    if paused is not None and paused.until > now:
        return Hold(0, paused.until, f"邮件服务商限制发信，暂停发送：{paused.reason}", strikes,
                    paused.reason)
    s = rt.settings.smtp
    limit, until, reason = BATCH, None, None
    for cap, window, name in ((s.max_per_minute, timedelta(minutes=1), "每分钟"),
                              (s.max_per_day, timedelta(days=1), "每日")):
        if not cap:
            continue
        sent = await outbox.sent_since(session, now - window)
        if sent >= cap:
            nth = await outbox.nth_sent_since(session, now - window, sent - cap)
            free = (nth or now) + window
            if until is None or free > until:
                until, reason = free, f"已达{name}发信上限（{cap} 封）"
        limit = min(limit, max(cap - sent, 0))
    return Hold(limit, until if limit == 0 else None, reason if limit == 0 else None, strikes)


def _expired(rt: Runtime, row: Outbox) -> bool:
    deadline = row.retry_until or row.created_at + timedelta(hours=rt.settings.smtp.retry_hours)
    return utcnow() + _backoff(rt, row.attempts) > deadline


async def _pause(rt: Runtime, session: AsyncSession, exc: Exception) -> datetime:
    before = await outbox.pause_state(session)
    strikes = (before.strikes if before is not None else 0) + 1
    wait = timedelta(seconds=rt.settings.smtp.throttle_pause_seconds * 2 ** (strikes - 1))
    until = utcnow() + min(wait, MAX_PAUSE)
    # Shown on /healthz and the console: without any address a per-recipient answer quotes.
    reason = without_addresses(_describe(exc))
    await outbox.pause(session, until=until, reason=reason, strikes=strikes)
    log.warning("SMTP provider throttles us (%s); outbox paused until %s (pause %d in a row)",
                reason, until.isoformat(timespec="seconds"), strikes)
    return until


async def _fail(rt: Runtime, session: AsyncSession, row: Outbox, exc: Exception,
                why: str) -> None:
    """Fail a row for good; an acknowledgement's letter says so on its console page. A refused
    address is the sender's fault (info); retries that ran out are worth a warning."""
    if why == "expired":
        log.warning("outbox %s failed permanently: %s", row.id, without_addresses(_describe(exc)))
    else:
        fault = exc if isinstance(exc, SenderFault) else AddressRefused(_describe(exc))
        errors.report(log, f"outbox {row.id} failed permanently", fault)
    await outbox.mark_failed(session, row.id, _describe(exc))
    if row.submission_id is not None and row.purpose == "ack":
        await outbox.flag_mail_failure(session, row.submission_id, ACK_FAILED[why])
        await events.record(session, row.submission_id, "system", "ack-failed",
                            {"reason": ACK_FAILED[why]})


async def _settle(rt: Runtime, rows: list[Outbox], results: dict[int, Exception | None],
                  had_strikes: bool) -> None:
    """Record what became of each claimed row, and the relay's state."""
    throttled = next((e for e in results.values() if is_throttle(e)), None)
    async with rt.sessions.begin() as session:
        until = await _pause(rt, session, throttled) if throttled is not None else None
        if throttled is None and had_strikes and any(e is None for e in results.values()):
            await outbox.clear_pause(session)
        deferred = []
        for row in rows:
            exc = results[row.id]
            if exc is None:
                continue  # marked sent as soon as it was accepted
            if until is not None and (isinstance(exc, NotAttempted) or is_throttle(exc)):
                deferred.append(row.id)
            elif isinstance(exc, NoSmtpUtf8):
                await _fail(rt, session, row, exc, "smtputf8")
            elif _is_permanent(exc):
                await _fail(rt, session, row, exc, "refused")
            elif row.attempts + 1 >= rt.settings.smtp.max_attempts or _expired(rt, row):
                await _fail(rt, session, row, exc, "expired")
            else:
                log.warning("outbox %s retry: %s", row.id, without_addresses(_describe(exc)))
                await outbox.mark_retry(session, row.id, _describe(exc),
                                        _backoff(rt, row.attempts))
        if until is not None and throttled is not None:  # a pause means a throttle
            await outbox.mark_deferred(session, deferred, until, _describe(throttled))
    _report(rt, results)


def _report(rt: Runtime, results: dict[int, Exception | None]) -> None:
    """The worker's state on /healthz: "error" with the reason while the relay cannot be
    reached (no message of the round went through), "running" again once one does."""
    state = rt.worker("outbox")
    outage = [e for e in results.values() if isinstance(e, Unreachable | OSError)]
    if any(e is None for e in results.values()):
        state.state, state.last_error = "running", None
    elif outage:
        state.state = "error"
        state.last_error = f"{OUTAGE}: {_outage(outage[0])}"


def _outage(exc: Exception) -> str:
    """What went wrong with the relay, for /healthz (public): the relay's answer or the kind
    of error, never its host and port ("SMTPConnectError (ConnectionRefusedError)")."""
    cause = exc.cause if isinstance(exc, Unreachable) else exc
    if isinstance(cause, aiosmtplib.SMTPResponseException):
        return f"{cause.code} {without_addresses(cause.message)}"[:300]
    inner = cause.__cause__ or cause.__context__
    return cause.__class__.__name__ + (f" ({inner.__class__.__name__})" if inner else "")


def quiet_until(rt: Runtime) -> datetime | None:
    """When the quiet hours (``[casework] quiet_hours``) end, while they last: reminder mail
    (``handlers.reminders.QUIET_PURPOSES``) waits until then, so nothing wakes staff or a unit
    at night, whenever it was queued or retried."""
    return clock.quiet_until(utcnow(), ZoneInfo(rt.settings.digest.timezone),
                             clock.parse_span(rt.settings.casework.quiet_hours))


async def deliver_due(rt: Runtime, alerts_only: bool = False) -> int:
    """Claim and deliver one batch; return how many rows were claimed. An urgent letter's
    alert (``handlers.urgent.PRIORITY``) goes first, and the sending caps do not hold it (a
    person must see it within minutes; the quiet hours hold only reminders). The provider's
    pause holds it too: sending into a throttle would only prolong it. ``alerts_only``: the
    rest waits (see :class:`OutboxWorker`); whether an alert is due is read first, so that
    no write transaction is opened for nothing."""
    if alerts_only:
        async with rt.sessions() as session:
            due = await outbox.next_due_at(session, min_priority=urgent.PRIORITY)
        if due is None or due > utcnow():
            return 0
    async with rt.sessions.begin() as session:
        held = await hold(rt, session)
        if held.limit == 0 and held.paused is not None:
            return 0
        if held.limit == 0 or alerts_only:
            rows = await outbox.claim_due(session, limit=BATCH, lease=LEASE,
                                          min_priority=urgent.PRIORITY)
        else:
            rows = await outbox.claim_due(session, limit=held.limit, lease=LEASE)
        morning = quiet_until(rt)
        if morning is not None:  # held, not attempted: no attempt is counted
            quiet = [r.id for r in rows if r.purpose in QUIET_PURPOSES]
            await outbox.mark_deferred(session, quiet, morning, None)
            rows = [r for r in rows if r.purpose not in QUIET_PURPOSES]
    if not rows:
        return 0
    texts = [r for r in rows if r.purpose == SMS]
    mails = [r for r in rows if r.purpose != SMS]
    results: dict[int, Exception | None] = {}
    if texts:  # notices by SMS go to the gateway (bot/sms.py), with the same retries
        results |= await sms.send(rt.settings.sms, texts, lambda row_id: _mark_sent(rt, row_id))
    if mails and rt.settings.smtp.host:
        results |= await _smtp_send_parallel(rt, mails)
    elif mails:
        results |= await _write_emls(rt, mails)
    await _settle(rt, rows, results, had_strikes=held.strikes > 0)
    return len(rows)


async def _delay_until_due(rt: Runtime, ceiling: float) -> float:
    """Seconds until the next row is due or the hold ends, at most ``ceiling``."""
    async with rt.sessions() as session:
        held = await hold(rt, session)
        due = held.until if held.limit == 0 else await outbox.next_due_at(session)
        if held.limit == 0 and held.paused is None:  # capped: an alert still goes when due
            alert = await outbox.next_due_at(session, min_priority=urgent.PRIORITY)
            due = alert if due is None or (alert is not None and alert < due) else due
    return ceiling if due is None else max(0.05, min(ceiling, (due - utcnow()).total_seconds()))


class OutboxWorker(Worker):
    """Delivers what is due; sleeps until the next row is due or new mail is queued.

    While citizens are posting (``rt.foreground``) only urgent alerts go, and the rest waits
    until the form has been quiet for a moment: each delivery is two write transactions
    (claim, then mark sent), and on SQLite every POST of that moment waited for them, each
    statement a hand-off to the driver's thread that the busy event loop answers late. The
    acknowledgements of a rush go out when it is over, seconds later."""

    name = "outbox"

    def __init__(self, rt: Runtime, poll_seconds: float = 2.0) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        self.retry_after = poll_seconds
        self.wakeup = rt.outbox_wakeup

    async def round(self) -> Next:
        if self.rt.foreground.busy():
            claimed = await deliver_due(self.rt, alerts_only=True)
            return Next(0.0 if claimed else STEP_ASIDE)
        claimed = await deliver_due(self.rt)
        last_error = self.rt.worker(self.name).last_error or ""
        # An unreachable relay stays the state (set by _report) until mail goes out again.
        problem = last_error if last_error.startswith(OUTAGE) else None
        if problem is None:
            self.rt.worker(self.name).last_error = None
        delay = 0.0 if claimed else await _delay_until_due(self.rt, self.poll_seconds)
        return Next(delay, problem)


async def run(rt: Runtime, poll_seconds: float = 2.0) -> None:
    """Forever (until ``rt.stopping``): deliver what is due, on the runner."""
    await runner.run(rt, OutboxWorker(rt, poll_seconds))
