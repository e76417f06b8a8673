"""The IMAP poller against a real Dovecot, a real SMTP sink and both database backends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from bot.app import start
from bot.runtime import Runtime
from bot.sources.imap import ImapPoller
from bot.workers.intake import drain
from storage.models import Outbox, RawIntake
from testing.dovecot import Dovecot
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import (
    append,
    contents,
    count,
    imap_section,
    letter,
    raw_rows,
    submissions,
    until,
)
from tests.conftest import make_settings


async def idle_state(rt: Runtime) -> bool:
    return rt.worker("imap").state == "idle"


async def test_mail_is_stored_acknowledged_and_moved(db_url, tmp_path: Path, imap_account,
                                                     smtp_sink: SmtpSink):
    first = [letter(subject=f"来信 {i}", sender=f"c{i}@163.com") for i in range(2)]
    await append(imap_account, *first)
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=imap_section(imap_account))
    assert await contents(imap_account, "Processed") is None
    service = await start(settings)
    try:
        rt = service.runtime
        await wait_mail(smtp_sink, 2)
        await until(lambda: idle_state(rt), what="IDLE")
        # IDLE: a new mail is acknowledged at the SMTP server within seconds of the APPEND.
        late = letter(subject="晚到的来信", sender="late@qq.com")
        t0 = time.monotonic()
        await append(imap_account, late)
        await wait_mail(smtp_sink, 3, timeout=10)
        assert time.monotonic() - t0 < 5.0
        rows = await until(lambda: _all_done(rt, 3), what="raw rows done")
        assert [r.raw for r in rows] == [*first, late]  # the exact bytes, in order
        assert all(r.source_key.startswith("imap:INBOX:") and r.message_id for r in rows)
        subs = await submissions(rt)
        assert sorted(s.from_addr for s in subs) == ["c0@163.com", "c1@163.com", "late@qq.com"]
        assert all(s.auto is None and s.category != "unclassified" for s in subs)
        assert {m.rcpt_tos[0] for m in smtp_sink.messages} == {s.from_addr for s in subs}
        assert await until(lambda: _inbox_empty(imap_account), what="INBOX emptied")
        moved = await contents(imap_account, "Processed")
        assert moved is not None and [raw for raw, _ in moved] == [*first, late]
        assert all(b"\\Seen" in flags for _, flags in moved)
        async with aiohttp.ClientSession() as http, http.get(f"{service.base_url}/healthz") as r:
            health = await r.json()
        assert health["workers"]["imap"]["state"] == "idle"
        assert health["workers"]["imap"]["last_success"]
    finally:
        await service.stop()


async def _all_done(rt: Runtime, n: int) -> list[RawIntake] | None:
    rows = await raw_rows(rt)
    return rows if len(rows) == n and all(r.state == "done" for r in rows) else None


async def _inbox_empty(acct) -> bool:  # type: ignore[no-untyped-def]
    return await contents(acct, "INBOX") == []


async def test_crash_between_commit_and_move_sends_one_ack(db_url, tmp_path: Path, imap_account,
                                                           smtp_sink: SmtpSink):
    raw = letter()
    await append(imap_account, raw)
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=imap_section(imap_account))
    rt = Runtime.create(settings)
    crashed = ImapPoller(rt, lease_ttl=0.2)
    try:
        assert await crashed.hold_lease()
        await crashed.connect()
        assert await crashed.cycle(move=False) == 1  # committed, then "killed" before the MOVE
        await crashed.close()
    finally:
        await rt.close()
    [(left, flags)] = await contents(imap_account, "INBOX")
    assert left == raw and b"\\Seen" not in flags
    await asyncio.sleep(0.3)  # the dead poller's lease runs out
    service = await start(settings)
    try:
        await wait_mail(smtp_sink, 1)
        assert await until(lambda: _inbox_empty(imap_account), what="INBOX emptied")
        await asyncio.sleep(1.0)  # time for a second acknowledgement, if there were one
        assert len(smtp_sink.messages) == 1
        assert len(await raw_rows(service.runtime)) == 1
        assert len(await submissions(service.runtime)) == 1
        assert len(await contents(imap_account, "Processed") or []) == 1
    finally:
        await service.stop()


async def test_dovecot_restart_is_survived(db_url, tmp_path: Path, dovecot: Dovecot, imap_account,
                                           smtp_sink: SmtpSink):
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=imap_section(imap_account))
    service = await start(settings)
    try:
        await append(imap_account, letter(sender="before@example.com"))
        await wait_mail(smtp_sink, 1)
        await asyncio.to_thread(dovecot.restart)
        await append(imap_account, letter(sender="after@example.com"))
        await wait_mail(smtp_sink, 2, timeout=15)
        assert [m.rcpt_tos[0] for m in smtp_sink.messages] == ["before@example.com",
                                                               "after@example.com"]
        await until(lambda: idle_state(service.runtime), what="IDLE again")
    finally:
        await service.stop()


async def test_bad_login_is_reported_and_retried(db_url, tmp_path: Path, dovecot: Dovecot,
                                                 imap_account, smtp_sink: SmtpSink):
    section = imap_section(imap_account, password="wrong-password")
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=section)
    await append(imap_account, letter())
    service = await start(settings)
    try:
        rt = service.runtime
        await until(lambda: _state_is(rt, "error"), what="login error")
        async with aiohttp.ClientSession() as http, http.get(f"{service.base_url}/healthz") as r:
            health = await r.json()
        assert health["status"] == "degraded"
        assert "LoginError" in health["workers"]["imap"]["last_error"]
        assert "wrong-password" not in await r.text()
        dovecot.add_user(imap_account.user, "wrong-password")  # the admin fixes the account
        await wait_mail(smtp_sink, 1, timeout=15)
        await until(lambda: idle_state(rt), what="IDLE after the fix")
    finally:
        await service.stop()


async def _state_is(rt: Runtime, state: str) -> bool:
    return rt.worker("imap").state == state


async def test_uidvalidity_change_does_not_reingest(db_url, tmp_path: Path, imap_account,
                                                    smtp_sink: SmtpSink):
    old = [letter(sender=f"old{i}@example.com") for i in range(2)]
    await append(imap_account, *old, folder="Feedback")
    settings = make_settings(db_url, tmp_path, smtp_sink,
                             imap=imap_section(imap_account, folder="Feedback"))
    rt = Runtime.create(settings)
    crashed = ImapPoller(rt, lease_ttl=0.2)
    try:
        assert await crashed.hold_lease()
        await crashed.connect()
        before = crashed.mail.uidvalidity
        assert await crashed.cycle(move=False) == 2
        await crashed.close()
    finally:
        await rt.close()
    # The folder is rebuilt (as a server migration would): same mail, new UIDVALIDITY.
    await asyncio.to_thread(_rebuild, imap_account, "Feedback")
    new = letter(sender="new@example.com")
    await append(imap_account, *old, new, folder="Feedback")
    service = await start(settings)
    try:
        await wait_mail(smtp_sink, 3)
        await until(lambda: _empty(imap_account, "Feedback"), what="Feedback emptied")
        rows = await raw_rows(service.runtime)
        assert [r.raw for r in rows] == [*old, new]  # the old two were not stored again
        validities = {r.source_key.split(":")[2] for r in rows}
        assert len(validities) == 2 and str(before) in validities
        await asyncio.sleep(0.5)
        assert len(smtp_sink.messages) == 3
        assert len(await submissions(service.runtime)) == 3
    finally:
        await service.stop()


def _rebuild(acct, folder: str) -> None:  # type: ignore[no-untyped-def]
    from tests.bot.sources.mailtools import _client

    with _client(acct) as c:
        c.rename_folder(folder, folder + "-old")
        c.create_folder(folder)


async def _empty(acct, folder: str) -> bool:  # type: ignore[no-untyped-def]
    return await contents(acct, folder) == []


async def test_two_instances_one_lease_no_duplicates(db_url, tmp_path: Path, imap_account,
                                                     smtp_sink: SmtpSink):
    settings = make_settings(db_url, tmp_path, smtp_sink, imap=imap_section(imap_account))
    rts = [Runtime.create(settings), Runtime.create(settings)]
    pollers = [ImapPoller(rt, holder=f"instance-{i}", standby_check=0.1)
               for i, rt in enumerate(rts)]
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    try:
        states = await until(lambda: _settled(rts), what="one active, one standby")
        active = states.index("idle")
        await append(imap_account, *[letter(sender=f"p{i}@example.com") for i in range(3)])
        await until(lambda: _stored(rts[0], 3), what="3 stored")
        assert rts[1 - active].worker("imap").state == "standby"
        # The active instance stops; the other takes over and carries on.
        tasks[active].cancel()
        await asyncio.gather(tasks[active], return_exceptions=True)
        other = rts[1 - active]
        await until(lambda: idle_state(other), what="takeover")
        await append(imap_account, letter(sender="p3@example.com"))
        rows = await until(lambda: _stored(rts[0], 4), what="4 stored")
        assert await until(lambda: _inbox_empty(imap_account), what="INBOX emptied")
        assert len(await contents(imap_account, "Processed") or []) == 4
        await drain(other)
        rows = await raw_rows(other)
        assert len(rows) == 4 and len({r.message_id for r in rows}) == 4
        assert len(await submissions(other)) == 4
        assert await count(other, Outbox, Outbox.purpose == "ack") == 4
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rt in rts:
            await rt.close()


async def _settled(rts: list[Runtime]) -> list[str] | None:
    states = [rt.worker("imap").state for rt in rts]
    return states if sorted(states) == ["idle", "standby"] else None


async def _stored(rt: Runtime, n: int) -> list[RawIntake] | None:
    rows = await raw_rows(rt)
    return rows if len(rows) >= n else None


async def test_without_idle_the_mailbox_is_polled(db_url, tmp_path: Path, imap_account,
                                                  smtp_sink: SmtpSink):
    section = imap_section(imap_account, idle=False, poll_seconds=0.3)
    service = await start(make_settings(db_url, tmp_path, smtp_sink, imap=section))
    try:
        await until(lambda: _state_is(service.runtime, "polling"), what="polling")
        await append(imap_account, letter(sender="poll@example.com"))
        [ack] = await wait_mail(smtp_sink, 1)
        assert ack.rcpt_tos == ["poll@example.com"]
        assert await until(lambda: _inbox_empty(imap_account), what="INBOX emptied")
    finally:
        await service.stop()


async def test_mail_arriving_during_a_cycle_is_taken_in_without_waiting(
        db_url, tmp_path: Path, imap_account, smtp_sink: SmtpSink):
    """Letters appended while the poller works through a full mailbox are announced to its
    FETCH and MOVE, not to the IDLE that follows: it must look again before it idles (here the
    safety-net search is 5 minutes away)."""
    early = [letter(subject=f"来信 {i}", sender=f"e{i}@example.com") for i in range(150)]
    await append(imap_account, *early)
    section = imap_section(imap_account, poll_seconds=300, batch_size=2)
    service = await start(make_settings(db_url, tmp_path, smtp_sink, imap=section))
    try:
        rt = service.runtime
        await until(lambda: _stored(rt, 1), what="the first batch stored")
        late = [letter(subject=f"迟到 {i}", sender=f"l{i}@example.com") for i in range(3)]
        await append(imap_account, *late)
        t0 = time.monotonic()
        stored = await until(lambda: _stored(rt, len(early) + len(late)), timeout=30,
                             what="every letter stored")
        assert time.monotonic() - t0 < 10
        assert sorted(r.raw for r in stored) == sorted([*early, *late])
    finally:
        await service.stop()


def test_mail_announced_before_idle_is_not_left_waiting(imap_account):
    """A mail that lands after the SEARCH was answered is announced to the next command (here
    a FETCH of the mail already seen), and the server does not tell the IDLE after it again:
    the client must report it instead of idling until the poll interval."""
    from bot.config import ImapSettings
    from bot.sources.imap_client import MailboxClient
    from tests.bot.sources.mailtools import append_sync

    append_sync(imap_account, letter(subject="第一封"))
    mail = MailboxClient(ImapSettings(**imap_section(imap_account)))
    mail.connect()
    try:
        first = mail.present()
        assert len(first) == 1
        append_sync(imap_account, letter(subject="第二封"))
        mail.fetch(first)  # its answer carries the EXISTS of the second mail
        t0 = time.monotonic()
        assert mail.idle_wait(timeout=20, reissue_after=600)
        assert time.monotonic() - t0 < 5
        assert len(mail.present()) == 2
        # Nothing new since: the client idles (the empty wait ends at its timeout).
        assert not mail.idle_wait(timeout=0.5, reissue_after=600)
    finally:
        mail.close()
