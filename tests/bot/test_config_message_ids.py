"""``[smtp] message_id_domain``: the host of our Message-IDs is our own, never the mailbox's
shared provider; a bad value stops the start naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings


def test_default_is_the_public_urls_host_not_the_providers():
    s = Settings(web={"public_url": "https://Xinfang.Example.gov.cn:8443/feedback"},
                 smtp={"from_addr": "ntzfwjgdw@163.com"})
    assert s.message_id_domain == "xinfang.example.gov.cn"
    assert Settings(web={"public_url": "http://[::1]:8080"}).message_id_domain == "[::1]"


def test_configured_value_wins():
    s = Settings(smtp={"from_addr": "ntzfwjgdw@163.com", "message_id_domain": "Mail.ZFW.example"})
    assert s.message_id_domain == "mail.zfw.example"


@pytest.mark.parametrize("value", ["zfw@example.gov.cn", "-bad.example", "a b.example", "<x>"])
def test_bad_value_names_the_key(tmp_path: Path, value: str):
    config = tmp_path / "c.toml"
    config.write_text(f'[smtp]\nmessage_id_domain = "{value}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"smtp\.message_id_domain"):
        load_settings(config)
