"""Pytest fixtures that hand tests real servers on loopback (the servers are in ``testing/``).

Registered by the root conftest (``pytest_plugins = ["tests.fixtures_servers"]``). Dovecot and
PostgreSQL start once per session; each test gets a fresh IMAP user and its own SMTP sink.
A missing server binary skips the test on a developer machine, but fails it when ``CI=true``:
CI must never go green by skipping the integration tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.async_api import Browser, Page, async_playwright

from testing.chromium import CHROMIUM_ARGS, chromium_path
from testing.dovecot import Dovecot, ImapAccount
from testing.oauth import TokenIntrospection
from testing.postgres import Postgres
from testing.smtp import SmtpSink


def require(present: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI=true) when a server binary is not installed."""
    if present:
        return
    msg = f"{what} is not installed; run .ci/system-deps.sh as root to install it"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {msg}", pytrace=False)
    pytest.skip(msg)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A recording SMTP server on a free port, with error injection (see SmtpSink)."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot IMAP server for the session; use ``imap_account`` for an isolated mailbox."""
    require(Dovecot.available(), "Dovecot (dovecot-imapd)")
    with Dovecot() as server:
        yield server


@pytest.fixture
def imap_account(dovecot: Dovecot) -> ImapAccount:
    """A brand-new IMAP user with an empty INBOX (and no Archive folder yet)."""
    user = f"u{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(12)
    dovecot.add_user(user, password)
    return ImapAccount(dovecot.host, dovecot.port, user, password)


class TlsImapAccount(NamedTuple):
    """A user on ``dovecot_tls``: STARTTLS (or plain LOGIN) on ``port``, IMAPS on ``ssl_port``.

    ``host``/``port``/``user``/``password`` work with the plain helpers in mailtools as they are.
    """

    host: str
    port: int
    user: str
    password: str
    ssl_port: int
    ca_file: Path


@pytest.fixture(scope="session")
def token_introspection() -> Iterator[TokenIntrospection]:
    """The identity provider's token introspection endpoint that ``dovecot_tls`` asks."""
    with TokenIntrospection() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dovecot_tls(token_introspection: TokenIntrospection) -> Iterator[Dovecot]:
    """A Dovecot with a certificate from a throw-away CA (STARTTLS and IMAPS) and XOAUTH2."""
    require(Dovecot.available(), "Dovecot (dovecot-imapd)")
    with Dovecot(tls=True, introspection_url=token_introspection.url) as server:
        yield server


@pytest.fixture
def imap_tls_account(dovecot_tls: Dovecot) -> TlsImapAccount:
    """A brand-new user with an empty INBOX on the TLS Dovecot."""
    assert dovecot_tls.ca_path is not None
    user = f"u{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(12)
    dovecot_tls.add_user(user, password)
    return TlsImapAccount(dovecot_tls.host, dovecot_tls.port, user, password,
                          dovecot_tls.ssl_port, dovecot_tls.ca_path)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throw-away PostgreSQL cluster for the session (``create_database`` per test)."""
    require(Postgres.available(), "PostgreSQL (postgresql)")
    with Postgres() as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium driven by Playwright.

    Function-scoped: Playwright objects are bound to the event loop that created them and
    pytest-asyncio gives each test its own loop; a launch costs about a second.
    """
    path = chromium_path()
    require(path is not None, "Chromium (chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page in its own browser context (no cookies shared between tests)."""
    context = await browser.new_context(locale="zh-CN")
    try:
        yield await context.new_page()
    finally:
        await context.close()
