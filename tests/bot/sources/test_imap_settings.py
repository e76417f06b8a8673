"""Connection rules that need no server: plain IMAP only on loopback, the XOAUTH2 token command."""

from __future__ import annotations

import sys

import pytest

from bot.config import ImapSettings
from bot.sources.imap_client import ImapConfigError, MailboxClient, oauth2_token


def test_plain_imap_is_refused_off_loopback():
    client = MailboxClient(ImapSettings(host="192.0.2.10", port=143, ssl=False, user="u"))
    with pytest.raises(ImapConfigError, match="loopback"):
        client.connect()  # refused before any connection is attempted


def test_token_command_output_is_the_token():
    command = f'{sys.executable} -c "print(\'ya29.token-value\')"'
    assert oauth2_token(command) == "ya29.token-value"


def test_failing_token_command_is_a_config_error_without_its_output():
    command = f'{sys.executable} -c "import sys; print(\'secret\'); sys.exit(3)"'
    with pytest.raises(ImapConfigError) as err:
        oauth2_token(command)
    assert "3" in str(err.value) and "secret" not in str(err.value)
