"""IMAP over TLS (implicit and STARTTLS) and XOAUTH2, against a real Dovecot with its own CA.

The Dovecot here (``dovecot_tls``) has a certificate from a throw-away CA, so it is trusted only
through ``imap.ca_file``: these tests show that mail is taken in over both kinds of TLS, that
certificate verification cannot be skipped, and that Dovecot itself accepts or refuses the
XOAUTH2 tokens that ``imap.oauth2_token_command`` prints (asking the identity provider's
introspection endpoint, the one stand-in). The transport is the subject, so the database is
SQLite only; test_imap_poller.py runs the intake itself on both backends.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Service, start
from bot.config import ImapSettings
from bot.runtime import Runtime
from bot.sources.imap_client import MailboxClient
from storage.db import upgrade
from testing.dovecot import Dovecot
from testing.oauth import TokenIntrospection
from testing.pki import make_test_pki
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import (
    append,
    contents,
    imap_section,
    letter,
    raw_rows,
    submissions,
    until,
)
from tests.conftest import make_settings
from tests.fixtures_servers import TlsImapAccount, require


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
    upgrade(url)
    return url


def imaps(acct: TlsImapAccount, **over: Any) -> dict[str, Any]:
    """[imap] for implicit TLS on the IMAPS port, trusting the test CA."""
    section = imap_section(acct, port=acct.ssl_port, ssl=True, ca_file=str(acct.ca_file))
    section.update(over)
    return section


def starttls(acct: TlsImapAccount, **over: Any) -> dict[str, Any]:
    """[imap] for STARTTLS on the plain port, by host name (the certificate names localhost)."""
    section = imap_section(acct, host="localhost", ssl=False, starttls=True,
                           ca_file=str(acct.ca_file))
    section.update(over)
    return section


async def serve(sqlite_url: str, tmp_path: Path, smtp_sink: SmtpSink,
                section: dict[str, Any]) -> Service:
    return await start(make_settings(sqlite_url, tmp_path, smtp_sink, imap=section))


def imap_errors(rt: Runtime) -> float:
    """feedback_errors_total{where="imap"} as /metrics shows it: one per failed attempt."""
    return rt.metrics.registry.get_sample_value("feedback_errors_total", {"where": "imap"}) or 0


async def failing_again(rt: Runtime, times: int = 2) -> str:
    """Wait until the poller failed ``times`` times (so it retries) and return its last error."""
    await until(lambda: _at_least(rt, times), what=f"{times} failed attempts")
    state = rt.worker("imap")
    assert state.state == "error" and state.last_error
    return state.last_error


async def _at_least(rt: Runtime, times: int) -> bool:
    return imap_errors(rt) >= times


async def health(service: Service) -> tuple[dict[str, Any], str]:
    async with aiohttp.ClientSession() as http, http.get(f"{service.base_url}/healthz") as r:
        return await r.json(), await r.text()


async def logins(server: Dovecot, user: str) -> list[str]:
    """Dovecot's own log lines of successful logins by ``user``."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [ln for ln in lines if "imap-login: Info: Login:" in ln and f"user=<{user}>" in ln]


async def tls_login(server: Dovecot, user: str, method: str) -> list[str]:
    """The poller's login as Dovecot logged it: ``method`` over TLS (the helpers use plain)."""
    async def probe() -> list[str]:
        return [ln for ln in await logins(server, user)
                if f"method={method}," in ln and ", TLS," in ln]
    return await until(probe, what=f"{method} login over TLS in the Dovecot log")


async def taken_in(service: Service, sink: SmtpSink, acct: TlsImapAccount, raw: bytes,
                   sender: str) -> None:
    """The letter became a submission, was acknowledged, and left the INBOX for Processed."""
    [ack] = await wait_mail(sink, 1, timeout=20)  # after a fix, the next retry may be 8 s away
    assert ack.rcpt_tos == [sender]
    rows = await raw_rows(service.runtime)
    assert [r.raw for r in rows] == [raw]  # the exact bytes
    assert [s.from_addr for s in await submissions(service.runtime)] == [sender]
    assert await until(lambda: _emptied(acct), what="INBOX emptied")
    moved = await contents(acct, "Processed")
    assert moved is not None and [m for m, _ in moved] == [raw]


async def _emptied(acct: TlsImapAccount) -> bool:
    return await contents(acct, "INBOX") == []


async def nothing_taken_in(service: Service, acct: TlsImapAccount, raw: bytes) -> None:
    assert await raw_rows(service.runtime) == []
    assert await submissions(service.runtime) == []
    [(left, flags)] = await contents(acct, "INBOX") or [(b"", ())]
    assert left == raw and b"\\Seen" not in flags


# ---------------------------------------------------------------- TLS with a private CA


@pytest.mark.parametrize("section", [imaps, starttls], ids=["implicit-tls", "starttls"])
async def test_mail_is_taken_in_over_tls_trusting_ca_file(
    sqlite_url, tmp_path: Path, dovecot_tls: Dovecot, imap_tls_account: TlsImapAccount,
    smtp_sink: SmtpSink, section,
):
    acct = imap_tls_account
    raw = letter(sender="tls@example.com")
    await append(acct, raw)
    service = await serve(sqlite_url, tmp_path, smtp_sink, section(acct))
    try:
        await taken_in(service, smtp_sink, acct, raw, "tls@example.com")
        assert await tls_login(dovecot_tls, acct.user, "PLAIN")
        await until(lambda: _idle(service.runtime), what="IDLE over TLS")
        late = letter(sender="late@example.com")  # IDLE works through the TLS layer too
        await append(acct, late)
        acks = await wait_mail(smtp_sink, 2)
        assert acks[1].rcpt_tos == ["late@example.com"]
    finally:
        await service.stop()


async def _idle(rt: Runtime) -> bool:
    return rt.worker("imap").state == "idle"


@pytest.mark.parametrize("section", [imaps, starttls], ids=["implicit-tls", "starttls"])
async def test_without_ca_file_the_certificate_is_refused(
    sqlite_url, tmp_path: Path, dovecot_tls: Dovecot, imap_tls_account: TlsImapAccount,
    smtp_sink: SmtpSink, section,
):
    acct = imap_tls_account
    raw = letter()
    await append(acct, raw)
    service = await serve(sqlite_url, tmp_path, smtp_sink, section(acct, ca_file=""))
    try:
        error = await failing_again(service.runtime)
        assert error.startswith("ImapCertificateError")
        assert "unable to get local issuer certificate" in error and "imap.ca_file" in error
        body, _ = await health(service)  # the service still answers: nothing crashed
        assert body["status"] == "degraded"
        assert body["workers"]["imap"]["state"] == "error"
        await nothing_taken_in(service, acct, raw)
        assert not [ln for ln in await logins(dovecot_tls, acct.user) if ", TLS," in ln]
    finally:
        await service.stop()
    assert smtp_sink.messages == []


async def test_wrong_ca_is_refused_until_the_right_one_is_put_in_place(
    sqlite_url, tmp_path: Path, imap_tls_account: TlsImapAccount, smtp_sink: SmtpSink,
):
    acct = imap_tls_account
    other = make_test_pki(tmp_path / "other-ca")  # a CA that did not sign the server's cert
    ca_file = tmp_path / "ca.pem"
    shutil.copy(other.ca_cert, ca_file)
    raw = letter(sender="ca@example.com")
    await append(acct, raw)
    service = await serve(sqlite_url, tmp_path, smtp_sink, imaps(acct, ca_file=str(ca_file)))
    try:
        assert (await failing_again(service.runtime)).startswith("ImapCertificateError")
        await nothing_taken_in(service, acct, raw)
        shutil.copy(acct.ca_file, ca_file)  # the admin puts the right CA in place
        await taken_in(service, smtp_sink, acct, raw, "ca@example.com")
    finally:
        await service.stop()


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "No such file or directory"), (b"not a certificate\n", "no PEM CA certificate")],
    ids=["missing", "not-pem"],
)
async def test_unusable_ca_file_is_a_config_error_logged_and_retried(
    sqlite_url, tmp_path: Path, imap_tls_account: TlsImapAccount, smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture, content: bytes | None, why: str,
):
    acct = imap_tls_account
    ca_file = tmp_path / "internal-ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    raw = letter(sender="fixed@example.com")
    await append(acct, raw)
    service = await serve(sqlite_url, tmp_path, smtp_sink, imaps(acct, ca_file=str(ca_file)))
    try:
        error = await failing_again(service.runtime)
        assert error.startswith(f"ImapConfigError: imap.ca_file '{ca_file}' cannot be used: ")
        assert why in error
        logged = [r for r in caplog.records if r.name == "bot.sources.imap"
                  and r.levelno == logging.ERROR and "configuration problem" in r.getMessage()]
        assert len(logged) >= 2 and str(ca_file) in logged[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info], "no traceback for a config error"
        await nothing_taken_in(service, acct, raw)
        shutil.copy(acct.ca_file, ca_file)  # fixed: picked up by the next retry, no restart
        await taken_in(service, smtp_sink, acct, raw, "fixed@example.com")
    finally:
        await service.stop()


def test_idle_over_tls_sees_the_server_go_away() -> None:
    """A dropped TLS connection in IDLE is reported as such, for the poller to reconnect."""
    require(Dovecot.available(), "Dovecot (dovecot-imapd)")
    with Dovecot(tls=True).start({"alice": "secret"}) as server:
        assert server.ca_path is not None
        settings = ImapSettings(host=server.host, port=server.ssl_port, ssl=True,
                                ca_file=str(server.ca_path), user="alice", password="secret")
        client = MailboxClient(settings)
        client.connect()
        try:
            assert client.can_idle
            assert client.idle_wait(0.2, 60) is False  # nothing new yet
            server.down()
            with pytest.raises(ConnectionAbortedError):
                for _ in range(20):  # BYE or EOF, whichever the shutdown produced
                    client.idle_wait(0.5, 60)
        finally:
            client.close()


# ---------------------------------------------------------------- XOAUTH2


def printf(token: str) -> str:
    return f"printf %s {shlex.quote(token)}"


async def test_xoauth2_token_from_the_command_logs_in(
    sqlite_url, tmp_path: Path, dovecot_tls: Dovecot, token_introspection: TokenIntrospection,
    imap_tls_account: TlsImapAccount, smtp_sink: SmtpSink,
):
    acct = imap_tls_account
    token = token_introspection.issue(acct.user)
    raw = letter(sender="oauth@example.com")
    await append(acct, raw)
    section = imaps(acct, password="", oauth2_token_command=printf(token))
    service = await serve(sqlite_url, tmp_path, smtp_sink, section)
    try:
        await taken_in(service, smtp_sink, acct, raw, "oauth@example.com")
        assert await tls_login(dovecot_tls, acct.user, "XOAUTH2")
        assert token in token_introspection.asked  # Dovecot checked it with the IdP
    finally:
        await service.stop()


async def test_wrong_token_is_refused_by_dovecot_and_retried(
    sqlite_url, tmp_path: Path, dovecot_tls: Dovecot, token_introspection: TokenIntrospection,
    imap_tls_account: TlsImapAccount, smtp_sink: SmtpSink,
):
    acct = imap_tls_account
    revoked = token_introspection.issue(acct.user)
    token_introspection.revoke(revoked)
    stolen = token_introspection.issue(acct.user + "-other")  # valid, but someone else's
    token_file = tmp_path / "token"
    token_file.write_text(revoked)
    raw = letter(sender="retry@example.com")
    await append(acct, raw)
    section = imaps(acct, password="", oauth2_token_command=f"cat {token_file}")
    service = await serve(sqlite_url, tmp_path, smtp_sink, section)
    try:
        rt = service.runtime
        error = await failing_again(rt)
        assert error.startswith("LoginError") and "AUTHENTICATIONFAILED" in error
        assert revoked in token_introspection.asked
        await refused_by_dovecot(dovecot_tls, acct.user, "Provided token is not valid")
        token_file.write_text(stolen)
        await refused_by_dovecot(dovecot_tls, acct.user,
                                 f"Username '{acct.user}' did not match '{acct.user}-other'")
        assert stolen in token_introspection.asked
        await until(lambda: _refused(rt), what="the refusal reported")  # and it keeps trying
        _, text = await health(service)
        assert revoked not in text and stolen not in text, "tokens are never shown"
        await nothing_taken_in(service, acct, raw)
        token_file.write_text(token_introspection.issue(acct.user))  # a fresh, valid token
        await taken_in(service, smtp_sink, acct, raw, "retry@example.com")
    finally:
        await service.stop()


async def _refused(rt: Runtime) -> bool:
    state = rt.worker("imap")
    return state.state == "error" and "AUTHENTICATIONFAILED" in (state.last_error or "")


async def refused_by_dovecot(server: Dovecot, user: str, why: str) -> None:
    """Wait for Dovecot's auth process to log that it refused ``user``'s token, and why."""
    async def probe() -> bool:
        lines = server.log_path.read_text(errors="replace").splitlines()
        return any(f"oauth2({user}," in ln and "oauth2 failed" in ln and why in ln
                   for ln in lines)
    await until(probe, what=f"Dovecot refusing the token: {why}")


async def test_failing_token_command_is_a_config_error(
    sqlite_url, tmp_path: Path, token_introspection: TokenIntrospection,
    imap_tls_account: TlsImapAccount, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture,
):
    acct = imap_tls_account
    raw = letter()
    await append(acct, raw)
    asked_before = len(token_introspection.asked)
    command = f"{shlex.quote(sys.executable)} -c 'import sys; print(\"leaked\"); sys.exit(1)'"
    section = imaps(acct, password="", oauth2_token_command=command)
    service = await serve(sqlite_url, tmp_path, smtp_sink, section)
    try:
        error = await failing_again(service.runtime)
        assert error == "ImapConfigError: oauth2_token_command exited with 1 and some output"
        assert "leaked" not in caplog.text
        assert any(r.levelno == logging.ERROR and "configuration problem" in r.getMessage()
                   for r in caplog.records)
        await nothing_taken_in(service, acct, raw)
        assert len(token_introspection.asked) == asked_before  # no login was even tried
    finally:
        await service.stop()

