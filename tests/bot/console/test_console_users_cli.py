"""``feedback-bot user …`` against a real database: add, list, passwd, disable, token."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest

from bot.cli import main
from storage import users
from storage.db import make_engine, sessionmaker


def _config(tmp_path: Path, db_url: str) -> str:
    path = tmp_path / "fb.toml"
    path.write_text(f'var_dir = "{tmp_path}/var"\n[database]\nurl = "{db_url}"\n')
    return str(path)


async def _user(db_url: str, name: str):
    engine = make_engine(db_url)
    try:
        async with sessionmaker(engine)() as db:
            return await users.by_name(db, name)
    finally:
        await engine.dispose()


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(argv)


def test_user_commands(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]):
    cfg = ["--config", _config(tmp_path, db_url)]
    assert _run(monkeypatch, ["user", "add", "zhang", "--role", "supervisor",
                              "--password-stdin", *cfg], "a long enough password\n") == 0
    assert _run(monkeypatch, ["user", "add", "zhang", "--role", "reviewer",
                              "--password-stdin", *cfg], "another long password\n") == 1
    assert _run(monkeypatch, ["user", "add", "li", "--role", "reviewer",
                              "--password-stdin", *cfg], "short\n") == 1
    user = asyncio.run(_user(db_url, "zhang"))
    assert user is not None and user.role == "supervisor"
    assert user.password_hash.startswith("$argon2id$")
    assert users.password_ok(user, "a long enough password")
    capsys.readouterr()
    assert _run(monkeypatch, ["user", "token", "zhang", *cfg]) == 0
    token = capsys.readouterr().out.strip()
    user = asyncio.run(_user(db_url, "zhang"))
    assert token.startswith("fbk_") and user.api_token_hash == users.hash_token(token)
    assert token not in (user.api_token_hash or "")
    assert _run(monkeypatch, ["user", "passwd", "zhang", "--password-stdin", *cfg],
                "brand new password\n") == 0
    assert users.password_ok(asyncio.run(_user(db_url, "zhang")), "brand new password")
    assert _run(monkeypatch, ["user", "disable", "zhang", *cfg]) == 0
    user = asyncio.run(_user(db_url, "zhang"))
    assert user.disabled and user.api_token_hash is None
    assert not users.password_ok(user, "brand new password")
    capsys.readouterr()
    assert _run(monkeypatch, ["user", "list", *cfg]) == 0
    listing = capsys.readouterr().out
    assert "zhang" in listing and "disabled" in listing and "supervisor" in listing


def test_enable_and_role_commands(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = ["--config", _config(tmp_path, db_url)]
    for name, role in (("wang", "admin"), ("zhou", "reviewer")):
        assert _run(monkeypatch, ["user", "add", name, "--role", role, "--password-stdin",
                                  *cfg], "a long enough password\n") == 0
    assert _run(monkeypatch, ["user", "role", "zhou", "supervisor", *cfg]) == 0
    assert asyncio.run(_user(db_url, "zhou")).role == "supervisor"
    assert _run(monkeypatch, ["user", "disable", "zhou", *cfg]) == 0
    assert _run(monkeypatch, ["user", "enable", "zhou", *cfg]) == 0
    user = asyncio.run(_user(db_url, "zhou"))
    assert not user.disabled and users.password_ok(user, "a long enough password")
    # the last enabled admin keeps its role, from the command line as in the browser
    assert _run(monkeypatch, ["user", "role", "wang", "reviewer", *cfg]) == 1
    assert asyncio.run(_user(db_url, "wang")).role == "admin"
    assert _run(monkeypatch, ["user", "role", "nobody", "admin", *cfg]) == 1
