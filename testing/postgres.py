"""A throw-away PostgreSQL cluster on loopback, one per test session or benchmark run."""

from __future__ import annotations

import atexit
import glob
import shutil
import subprocess
from pathlib import Path
from typing import Self

from testing.loopback import HOST, ServerError, free_port, is_root, log_tail, server_dir


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with initdb, or None."""
    dirs = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    dirs.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    return dirs[-1] if dirs else None


class Postgres:
    """A throw-away PostgreSQL cluster (trust auth, fsync off) on 127.0.0.1:<free port>."""

    def __init__(self, bindir: Path | str | None = None) -> None:
        found = Path(bindir) if bindir else postgres_bindir()
        self.bindir = found
        self.host = HOST
        self.port = 0
        self.dir: Path | None = None
        # initdb refuses to run as root: run the server binaries as the postgres user then.
        self._as_owner = ["runuser", "-u", "postgres", "--"] if is_root() else []

    @staticmethod
    def available() -> bool:
        return postgres_bindir() is not None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        """SQLAlchemy asyncpg URL of a database on this cluster."""
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"

    def start(self) -> Self:
        if self.bindir is None:
            raise ServerError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
        if self.dir is not None:
            raise ServerError("PostgreSQL already running")
        self.dir = server_dir("pg-")
        if is_root():
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        atexit.register(self.stop)
        try:
            self._initdb_and_start()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb_and_start(self) -> None:
        data, log = f"{self.dir}/data", f"{self.dir}/postgres.log"
        initdb = (
            "-D {} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions"
        )
        self._run("initdb", *initdb.format(data).split(), owner=True)
        # Durability is pointless for test data; these settings make DDL-heavy tests much faster.
        # -k: socket in our dir, /var/run/postgresql may not exist (containers).
        opts = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        # -w returns once the server accepts connections: no wait loop needed.
        self._run(
            "pg_ctl", "-D", data, "-l", log, "-w", "-t", "30", "-o", opts, "start", owner=True
        )

    def _run(self, tool: str, *args: str, owner: bool = False) -> str:
        assert self.bindir is not None and self.dir is not None
        cmd = (self._as_owner if owner else []) + [str(self.bindir / tool), *args]
        done = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            log = log_tail(self.dir / "postgres.log")
            raise ServerError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{log}")
        return done.stdout

    def _client(self, tool: str, *args: str) -> str:
        return self._run(tool, "-h", self.host, "-p", str(self.port), "-U", "postgres", *args)

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE (optionally cloned from ``template``); return its asyncpg URL.

        Cloning needs the template to have no open connections: dispose engines on it first.
        """
        self._client("createdb", *(["-T", template] if template else []), "--", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS, terminating sessions still connected to it."""
        self._client("dropdb", "--if-exists", "--force", "--", name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql and return its unaligned, tuples-only output."""
        return self._client(
            "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql
        )

    def stop(self) -> None:
        """Fast shutdown and delete the cluster. Safe to call twice."""
        if self.dir is None:
            return
        if (self.dir / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop", owner=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self if self.dir is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
