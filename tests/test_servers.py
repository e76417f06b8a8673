"""The loopback test servers behave like the real ones our service will meet in production."""

from __future__ import annotations

import ssl
import time
from email.message import EmailMessage

import aiosmtplib
import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from playwright.async_api import Page
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from testing.dovecot import Dovecot, ImapAccount
from testing.loopback import ServerError
from testing.oauth import TokenIntrospection
from testing.postgres import Postgres
from testing.smtp import SmtpSink
from tests.fixtures_servers import TlsImapAccount, require

RAW = (
    "From: =?utf-8?b?5byg5LiJ?= <zhangsan@example.org>\r\n"
    "To: feedback@example.gov.cn\r\n"
    "Subject: =?utf-8?b?5YWz5LqO5pW05pS55o6q5pa9?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "建议加快办理进度。\r\n"
).encode()


def _imap(account: ImapAccount) -> IMAPClient:
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=10)
    client.login(account.user, account.password)
    return client


def _ack(to: str = "zhangsan@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "feedback@example.gov.cn"
    msg["To"] = to
    msg["Subject"] = "您的意见已收到"
    msg.set_content("感谢您的反馈。")
    return msg


# ---------------------------------------------------------------- IMAP


def test_imap_append_fetch_and_idle_sees_new_message(imap_account: ImapAccount) -> None:
    with _imap(imap_account) as watcher, _imap(imap_account) as writer:
        folders = [name for _, _, name in watcher.list_folders()]
        assert folders == ["INBOX"], "Archive must not exist until our code creates it"
        watcher.select_folder("INBOX")
        watcher.idle()
        writer.append("INBOX", RAW)
        events = watcher.idle_check(timeout=5)
        watcher.idle_done()
        assert (1, b"EXISTS") in events

        uids = watcher.search(["UNSEEN"])
        body = watcher.fetch(uids, ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
        assert body == RAW
        assert watcher.search(["UNSEEN"]) == uids, "BODY.PEEK must not mark the message seen"


def test_imap_accounts_are_isolated_and_check_passwords(
    dovecot: Dovecot, imap_account: ImapAccount
) -> None:
    a = imap_account
    b = a._replace(user=a.user + "-other", password="pw-b")
    dovecot.add_user(b.user, b.password)
    with _imap(a) as client:
        client.append("INBOX", RAW)
    with _imap(b) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0

    started = time.monotonic()
    with pytest.raises(LoginError):
        _imap(a._replace(password="wrong"))
    _imap(a).logout()  # a later good login is not penalised for the failure
    assert time.monotonic() - started < 1.5, "no auth-failure delay or penalty in tests"


def test_dovecot_restart_keeps_port_and_mail() -> None:
    require(Dovecot.available(), "Dovecot (dovecot-imapd)")
    with Dovecot().start({"alice": "secret"}) as server:
        account = ImapAccount(server.host, server.port, "alice", "secret")
        old = _imap(account)
        old.append("INBOX", RAW)
        port = server.port

        server.restart()

        assert server.port == port
        with pytest.raises((OSError, IMAPClient.AbortError)):
            old.noop()  # the connection from before the restart is gone
        with _imap(account) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 1

        server.down()
        with pytest.raises(ConnectionRefusedError):
            _imap(account)
        server.restart()
        with _imap(account) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_dovecot_that_cannot_start_fails_fast_with_its_log() -> None:
    started = time.monotonic()
    with pytest.raises(ServerError, match="exited with code"):
        Dovecot(binary="/bin/false").start()
    assert time.monotonic() - started < 5


def test_dovecot_tls_serves_imaps_and_starttls_under_its_own_ca(
    imap_tls_account: TlsImapAccount,
) -> None:
    a = imap_tls_account
    trusted = ssl.create_default_context(cafile=a.ca_file)
    with IMAPClient(a.host, port=a.ssl_port, ssl=True, ssl_context=trusted, timeout=10) as c:
        c.login(a.user, a.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
    with IMAPClient("localhost", port=a.port, ssl=False, timeout=10) as c:
        assert b"STARTTLS" in c.capabilities()
        c.starttls(trusted)  # the certificate names localhost as well as 127.0.0.1
        c.login(a.user, a.password)
    with pytest.raises(ssl.SSLCertVerificationError):  # not in the system store
        IMAPClient(a.host, port=a.ssl_port, ssl=True, ssl_context=ssl.create_default_context(),
                   timeout=10)
    _imap(ImapAccount(a.host, a.port, a.user, a.password)).logout()  # plain login unchanged


def test_dovecot_checks_xoauth2_tokens_at_the_introspection_endpoint(
    imap_tls_account: TlsImapAccount, token_introspection: TokenIntrospection,
) -> None:
    a = imap_tls_account
    context = ssl.create_default_context(cafile=a.ca_file)

    def xoauth2(token: str) -> None:
        with IMAPClient(a.host, port=a.ssl_port, ssl=True, ssl_context=context,
                        timeout=10) as c:
            c.oauth2_login(a.user, token)

    good = token_introspection.issue(a.user)
    xoauth2(good)
    revoked = token_introspection.issue(a.user)
    token_introspection.revoke(revoked)
    others = token_introspection.issue(a.user + "-other")
    for refused in (revoked, others, "never-issued", a.password):
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            xoauth2(refused)
    assert token_introspection.asked[-5:] == [good, revoked, others, "never-issued", a.password]
    with pytest.raises(LoginError):  # and a token is no password
        _imap(ImapAccount(a.host, a.port, a.user, good))


# ---------------------------------------------------------------- SMTP


async def test_smtp_sink_injects_451_then_accepts(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(1, code=451)
    with pytest.raises(aiosmtplib.SMTPDataError) as excinfo:
        await aiosmtplib.send(_ack(), hostname=smtp_sink.host, port=smtp_sink.port)
    assert excinfo.value.code == 451
    assert smtp_sink.messages == []

    await aiosmtplib.send(_ack(), hostname=smtp_sink.host, port=smtp_sink.port)

    [got] = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ["zhangsan@example.org"]
    assert got.message["Subject"] == "您的意见已收到"
    assert got.message.get_content().strip() == "感谢您的反馈。"
    assert smtp_sink.failures_injected == 1


async def test_smtp_sink_rejects_one_recipient_and_delivers_to_the_other(
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.reject_rcpt("Gone@Example.org")
    errors, _ = await aiosmtplib.send(
        _ack("gone@example.org, zhangsan@example.org"),
        hostname=smtp_sink.host,
        port=smtp_sink.port,
    )
    assert errors["gone@example.org"].code == 550
    [got] = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ["zhangsan@example.org"]


async def test_smtp_sink_goes_down_and_comes_back_on_the_same_port(smtp_sink: SmtpSink) -> None:
    smtp_sink.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await aiosmtplib.send(_ack(), hostname=smtp_sink.host, port=smtp_sink.port, timeout=3)
    smtp_sink.start()
    await aiosmtplib.send(_ack(), hostname=smtp_sink.host, port=smtp_sink.port)
    assert len(smtp_sink.wait_for(1)) == 1


async def test_smtp_sink_with_credentials_requires_auth() -> None:
    with SmtpSink(credentials={"bot": "s3cret"}) as sink:
        with pytest.raises(aiosmtplib.SMTPSenderRefused):
            await aiosmtplib.send(_ack(), hostname=sink.host, port=sink.port)
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await aiosmtplib.send(
                _ack(), hostname=sink.host, port=sink.port, username="bot", password="wrong"
            )
        await aiosmtplib.send(
            _ack(), hostname=sink.host, port=sink.port, username="bot", password="s3cret"
        )
        [got] = sink.wait_for(1)
        assert got.login == "bot"


def test_smtp_sink_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    with pytest.raises(TimeoutError, match="0 of 1"):
        smtp_sink.wait_for(1, timeout=0.1)


# ---------------------------------------------------------------- PostgreSQL


async def test_postgres_database_from_template_and_drop(postgres: Postgres) -> None:
    url = postgres.create_database("servers_tpl")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1
        await conn.execute(text("CREATE TABLE note (body text)"))
        await conn.execute(text("INSERT INTO note VALUES ('整改')"))
    await engine.dispose()  # a template must have no open connections

    clone = create_async_engine(postgres.create_database("servers_clone", template="servers_tpl"))
    async with clone.connect() as conn:
        assert await conn.scalar(text("SELECT body FROM note")) == "整改"
    await clone.dispose()
    postgres.drop_database("servers_clone")

    gone = create_async_engine(postgres.url("servers_clone"))
    with pytest.raises(DBAPIError, match="does not exist"):
        async with gone.connect():
            pass
    await gone.dispose()
    postgres.drop_database("servers_tpl")


# ---------------------------------------------------------------- Chromium


async def test_chromium_renders_a_chinese_page(page: Page) -> None:
    await page.goto("data:text/html;charset=utf-8,<title>反馈</title><h1 id=t>意见已提交</h1>")
    assert await page.title() == "反馈"
    assert await page.text_content("#t") == "意见已提交"


# ---------------------------------------------------------------- skip / fail policy


def test_missing_server_skips_locally_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="system-deps.sh"):
        require(False, "Dovecot")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require(False, "Dovecot")
    require(True, "Dovecot")  # present: neither skips nor fails
