"""A real ``feedback-bot serve`` process, and the report's own deployment to run it as.

One way to launch ``serve`` for every test and benchmark that checks the service from outside:
:class:`ServeProcess` starts it from a TOML file, is ready when /healthz answers 200 (migrations
done, workers started) and stops it with SIGTERM; :func:`serving` keeps it up for a block and
asserts that it stopped cleanly. The fault harness (``testing/faults.py``) builds its killable
process on it.

:func:`deployment` writes the configuration the report runs with: its published mailbox
ntzfwjgdw@163.com as the sender (a shared provider's domain, so our Message-IDs carry the
service's own host), a Maildir or IMAP source, any other section the test needs (``urgent=``),
and gives the API token of a supervisor made through the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from testing.loopback import HOST, free_port

BIN = Path(sys.executable).parent / "feedback-bot"
MAILBOX = "ntzfwjgdw@163.com"
PUBLIC_HOST = "xinfang.ntzfw.example.gov.cn"  # the service's own host, not the mailbox's
SUPERVISOR_PASSWORD = "correct horse battery staple"


class ServeProcess:
    """One ``feedback-bot serve`` process on ``port``, run from ``config`` in ``workdir`` (its
    output goes to ``workdir/serve.log``)."""

    def __init__(self, workdir: Path, config: Path, port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = config
        self.port = port
        self.base_url = f"http://{HOST}:{port}"
        self.log = workdir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "serve", "--config", str(self.config)], cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    async def ready(self, timeout: float = 60) -> None:
        """Wait until /healthz answers 200 (migrations done, workers started)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"serve exited with {self.proc.returncode}:\n"
                                         + self.log_tail())
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.base_url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError("serve did not come up:\n" + self.log_tail())

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code (None if it was not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@asynccontextmanager
async def serving(workdir: Path, config: Path, port: int) -> AsyncIterator[ServeProcess]:
    """``serve`` up until the block ends; it must then stop cleanly (exit status 0)."""
    serve = ServeProcess(workdir, config, port)
    serve.start()
    try:
        await serve.ready()
        yield serve
    finally:
        code = await asyncio.to_thread(serve.stop)
    assert code == 0, serve.log_tail(60)


def _toml(value: object) -> str:
    # Python's literals are TOML's for what these tests write: 'text', numbers, ['lists'].
    return str(value).lower() if isinstance(value, bool) else repr(value)


def deployment_config(path: Path, db_url: str, port: int, smtp_port: int, *,
                      maildir: Path | None = None, **sections: dict[str, object]) -> Path:
    """The report's deployment: its 163.com mailbox as sender, a Maildir or IMAP source
    (``imap={...}``) and any other section given the same way (``urgent={"duty": [...]}``)."""
    lines = [
        "[database]", f'url = "{db_url}"',
        "[web]", f'host = "{HOST}"', f"port = {port}", f'public_url = "https://{PUBLIC_HOST}"',
        'secret_key = "deployment-secret-key-0123456789"',
        "[smtp]", f'host = "{HOST}"', f"port = {smtp_port}", f'from_addr = "{MAILBOX}"',
        'from_name = "南通市委政法委"',
        "[maildir]", f'path = "{maildir or ""}"',
    ]
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Deployment:
    """The report's deployment written to ``cwd``, to run with :meth:`serving`."""

    cwd: Path
    config: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``feedback-bot ARGS --config <this deployment's file>``."""
        return subprocess.run([str(BIN), *args, "--config", str(self.config)], cwd=self.cwd,
                              capture_output=True, text=True, timeout=120, input=stdin)

    def api_token(self, name: str = "zhuguan") -> str:
        """A new supervisor's API token, made as an administrator would: through the CLI."""
        out = self.cli("user", "add", name, "--role", "supervisor", "--password-stdin",
                       stdin=SUPERVISOR_PASSWORD + "\n")
        assert out.returncode == 0, out.stderr
        out = self.cli("user", "token", name)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[0]

    def serving(self) -> contextlib.AbstractAsyncContextManager[ServeProcess]:
        return serving(self.cwd, self.config, self.port)


def deployment(cwd: Path, db_url: str, smtp_port: int, *, maildir: Path | None = None,
               **sections: dict[str, object]) -> Deployment:
    """The report's deployment on a free port, its file ``cwd/feedback-bot.toml``."""
    port = free_port()
    config = deployment_config(cwd / "feedback-bot.toml", db_url, port, smtp_port,
                               maildir=maildir, **sections)
    return Deployment(cwd, config, port)
