"""RFC 2971 ID against a server that, like imap.163.com, refuses SELECT until the client sent
ID: real Dovecot behind ``testing.imap_gate.IdGate``. The poller identifies itself between login
and SELECT and reads the mail; a server that refuses ID does not stop it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from bot.app import start
from testing.dovecot import Dovecot
from testing.imap_gate import IdGate
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import append, imap_section, letter, submissions
from tests.conftest import make_settings


@pytest.fixture
def gate(dovecot: Dovecot) -> Iterator[IdGate]:
    with IdGate((dovecot.host, dovecot.port)) as proxy:
        yield proxy


def test_the_gate_refuses_select_like_163_until_id(gate: IdGate, imap_account) -> None:
    """The stand-in itself: without ID, SELECT gets 163's answer; after ID it works."""
    with IMAPClient(gate.host, port=gate.port, ssl=False, timeout=10) as c:
        c.login(imap_account.user, imap_account.password)
        assert c.has_capability("ID")
        with pytest.raises(IMAPClientError, match="Unsafe Login"):
            c.select_folder("INBOX")
        c.id_({"name": "test"})
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
    assert gate.refused == 1


async def test_poller_reads_mail_through_a_server_that_wants_id(
        db_url, tmp_path: Path, gate: IdGate, imap_account, smtp_sink: SmtpSink) -> None:
    mails = [letter(subject="反映执法问题", sender="wangwu@163.com"),
             letter(subject="咨询办事流程", sender="zhaoliu@qq.com")]
    await append(imap_account, *mails)  # straight into Dovecot, as 163's MX would deliver
    imap = imap_section(imap_account, host=gate.host, port=gate.port)
    service = await start(make_settings(db_url, tmp_path, smtp_sink, imap=imap))
    try:
        acks = await wait_mail(smtp_sink, 2, timeout=20)
        assert sorted(a.rcpt_tos[0] for a in acks) == ["wangwu@163.com", "zhaoliu@qq.com"]
        assert len(await submissions(service.runtime)) == 2
    finally:
        await service.stop()
    assert gate.refused == 0
    assert gate.ids and all(b'"name" "feedback-bot"' in i for i in gate.ids)
    # ID right after LOGIN, before the first SELECT (and before anything else)
    assert gate.commands.index("ID") == gate.commands.index("LOGIN") + 1
    assert gate.commands.index("ID") < gate.commands.index("SELECT")


async def test_a_refused_id_does_not_stop_the_poller(
        db_url, tmp_path: Path, dovecot: Dovecot, imap_account, smtp_sink: SmtpSink) -> None:
    """ID is a courtesy to most servers: one that answers NO to it is still read."""
    await append(imap_account, letter(subject="反映噪音扰民", sender="sunqi@163.com"))
    with IdGate((dovecot.host, dovecot.port), gate=False, refuse_id=True) as proxy:
        imap = imap_section(imap_account, host=proxy.host, port=proxy.port)
        service = await start(make_settings(db_url, tmp_path, smtp_sink, imap=imap))
        try:
            [ack] = await wait_mail(smtp_sink, 1, timeout=20)
            assert ack.rcpt_tos == ["sunqi@163.com"]
        finally:
            await service.stop()
    assert proxy.ids and "SELECT" in proxy.commands
