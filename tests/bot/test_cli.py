"""The command line as other tools use it: a TOML file, `serve` as a process, `export`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import aiohttp

from testing.loopback import free_port
from testing.smtp import SmtpSink
from tests.bot.helpers import submit, tracking_no, wait_mail

BIN = Path(sys.executable).parent / "feedback-bot"
SECRET = "s3cret-Never-In-Logs"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, input=stdin)


def write_config(path: Path, db_url: str, port: int, smtp_port: int) -> Path:
    path.write_text(
        f"""
[database]
url = "{db_url}"
[web]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"
secret_key = "{SECRET}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
from_addr = "xinfang@zfw.example.gov.cn"
[maildir]
path = "{path.parent}/maildir"
[imap]
password = "{SECRET}-imap"
""",
        encoding="utf-8",
    )
    return path


async def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(timeout * 10)):
            assert proc.poll() is None, "serve exited early"
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("serve did not come up")


async def test_serve_process_submit_and_export(db_url: str, tmp_path: Path, smtp_sink: SmtpSink):
    port = free_port()
    config = write_config(tmp_path / "fb.toml", db_url, port, smtp_sink.port)
    proc = subprocess.Popen([str(BIN), "serve", "--config", str(config)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/healthz", proc)
        async with aiohttp.ClientSession() as http:
            status, html = await submit(http, base, name="孙先生", email="sun@example.com",
                                        subject="扫黑除恶", body="我们村的砂石场有人强买强卖，希望严查。")
        assert status == 200
        tn = tracking_no(html)
        [mail] = await wait_mail(smtp_sink, 1, timeout=20)
        assert mail.message["From"].addresses[0].addr_spec == "xinfang@zfw.example.gov.cn"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert err, "serve logged nothing"
    assert SECRET.encode() not in err
    assert b"sun@example.com" not in err  # personal data stays out of the logs

    out = run_cli("export", "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    [row] = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["tracking_no"] == tn and row["channel"] == "web"
    assert row["from_name"] == "孙先生" and row["from_addr"] == "sun@example.com"
    assert row["text"] == "我们村的砂石场有人强买强卖，希望严查。"
    assert datetime.fromisoformat(row["received_at"]).utcoffset() is not None
    for key in ("phone", "subject", "category", "measure", "kind", "confidence", "status"):
        assert key in row

    out = run_cli("export", "--config", str(config), "--format", "csv", "--since", "2999-01-01",
                  cwd=tmp_path)
    assert out.returncode == 0
    assert list(csv.DictReader(io.StringIO(out.stdout))) == []
    out = run_cli("export", "--config", str(config), "--format", "csv", cwd=tmp_path)
    [csv_row] = list(csv.DictReader(io.StringIO(out.stdout)))
    assert csv_row["tracking_no"] == tn


def test_config_errors_name_the_key(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nprot = 25\n")
    out = run_cli("check-config", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and "smtp.prot" in out.stderr
    bad.write_text("[web]\nport = 'eighty'\n")
    out = run_cli("check-config", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and "web.port" in out.stderr
    out = run_cli("check-config", cwd=tmp_path, env={"FEEDBACK_SMTP__PORT": "x"})
    assert out.returncode == 2 and "smtp.port" in out.stderr
    out = run_cli("check-config", cwd=tmp_path, env={"FEEDBACK_DIGEST__SCHEDULE": "every monday"})
    assert out.returncode == 2 and "digest.schedule" in out.stderr


def test_env_overrides_toml(tmp_path: Path):
    from bot.config import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text('[smtp]\nport = 2525\nhost = "mail.example"\n')
    os.environ["FEEDBACK_SMTP__PORT"] = "2626"
    try:
        s = load_settings(cfg)
    finally:
        del os.environ["FEEDBACK_SMTP__PORT"]
    assert s.smtp.port == 2626 and s.smtp.host == "mail.example"
    assert "secret" not in repr(load_settings(cfg).smtp.password)


def test_config_is_honoured_before_and_after_the_subcommand(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nprot = 8080\n")
    for args in (("--config", str(bad), "check-config"), ("check-config", "--config", str(bad)),
                 ("--config", str(bad), "user", "list"), ("user", "list", "--config", str(bad)),
                 ("--config", str(bad), "export")):
        out = run_cli(*args, cwd=tmp_path)
        assert out.returncode == 2 and "web.prot" in out.stderr, (args, out.stderr)


def test_missing_config_file_named_explicitly_is_an_error(tmp_path: Path):
    missing = tmp_path / "nonexistent.toml"
    for args in (("--config", str(missing), "check-config"),
                 ("check-config", "--config", str(missing)),
                 ("--config", str(missing), "serve"),
                 ("--config", str(missing), "db", "upgrade")):
        out = run_cli(*args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stdout)
        assert "nonexistent.toml" in out.stderr and "valid" not in out.stdout


async def test_serve_with_config_before_the_subcommand_uses_it(tmp_path: Path):
    port = free_port()
    config = write_config(tmp_path / "fb.toml", f"sqlite+aiosqlite:///{tmp_path}/fb.db", port,
                          free_port())
    proc = subprocess.Popen([str(BIN), "--config", str(config), "serve"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert (tmp_path / "fb.db").exists()
