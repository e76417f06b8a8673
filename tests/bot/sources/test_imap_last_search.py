"""The IMAP poller and a mail that lands just before its last SEARCH (real Dovecot, both
database backends).

Dovecot answers a SEARCH from the mailbox as it last told the client about it, and reports mail
that arrived since in the same answer, after the results (``* SEARCH`` empty, then ``* 1
EXISTS``). IDLE then does not announce that mail again. So a mail that lands between the
poller's last command and its last SEARCH before IDLE is neither found nor announced: it waits
for ``imap.poll_seconds``. bench/urgent_alert.py met it (two letters of 100 alerted after 40 s
instead of 0.6 s); with a long poll interval it would miss the issue's 60 s for an urgent
letter. The poller now notes such an announcement (``MailboxClient.announced``) and looks again
instead of idling.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.runtime import Runtime
from bot.sources.imap import ImapPoller
from testing.dovecot import ImapAccount
from testing.smtp import SmtpSink
from tests.bot.sources.mailtools import append, imap_section, letter
from tests.conftest import make_settings

POLL_SECONDS = 600.0  # far longer than the test: only IDLE (or another look) can find the mail


async def test_a_mail_landing_before_the_last_search_is_not_left_to_the_poll_interval(
        db_url: str, tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    await append(imap_account, letter(subject="第一封来信"))
    settings = make_settings(db_url, tmp_path, smtp_sink,
                             imap=imap_section(imap_account, poll_seconds=POLL_SECONDS))
    rt = Runtime.create(settings)
    poller = ImapPoller(rt)
    try:
        assert await poller.hold_lease()
        await poller.connect()
        assert await poller.cycle() == 1  # found, stored and moved
        # The next mail lands after the MOVE's answer, before the SEARCH of the cycle that the
        # poller runs after every busy one (as the service's loop does).
        await append(imap_account, letter(subject="第二封来信", sender="second@qq.com"))
        stored = await poller.cycle()
        if not stored:  # not found: the poller must know it was announced and look again
            await asyncio.wait_for(poller.wait(), timeout=10)
            stored = await poller.cycle()
        assert stored == 1
    finally:
        await poller.close()
        await rt.close()
