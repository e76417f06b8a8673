"""Real servers on loopback for tests and benchmarks: Dovecot, PostgreSQL, SMTP sink, Chromium.

The test suite and the ``bench/`` scripts drive the service against real servers instead of mocks
(style.md, habit 8). This module only knows how to start, reach and stop them; it imports no pytest
so ``bench/`` can use it too (the pytest fixtures live in ``tests/fixtures_servers.py``).
Every server binds 127.0.0.1 on a free port, keeps its files in a fresh ``tempfile.mkdtemp()`` dir
directly under /tmp (the unprivileged server users cannot enter pytest's 0700 ``tmp_path``), runs as
a child of this process and is stopped by PID. Recipes: /work/shared/notes/real-servers.md.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import email
import email.policy
import glob
import grp
import ipaddress
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"

# Headless Chromium flags (recipe 4). --disable-dev-shm-usage because containers often have a
# 64 MB /dev/shm and Debian's wrapper script fails to detect that.
CHROMIUM_ARGS: list[str] = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class ServerError(RuntimeError):
    """A server did not start or stop; the message carries the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    """Path of a Chromium binary (``FEEDBACK_CHROMIUM`` overrides), or None if none is installed."""
    candidates = [os.environ.get("FEEDBACK_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _server_dir(prefix: str) -> Path:
    # Directly under /tmp with 0755 so the unprivileged server users can traverse it.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def _is_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------------------------
# TLS: a throw-away CA and a server certificate for loopback
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopbackPki:
    """PEM files: the CA a client must trust, and the server's certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_test_pki(
    directory: Path,
    dns_names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = (HOST,),
) -> LoopbackPki:
    """Create a CA and a server certificate it signed (valid one day) in ``directory``.

    Built with ``cryptography`` (installed with aiohttp-session[secure]). The extensions are the
    ones strict verifiers (Python 3.13's VERIFY_X509_STRICT) demand, so the test does not pass
    only because today's OpenSSL is lenient.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feedback-bot test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        _cert_builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    server = (
        _cert_builder(server_name, ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = LoopbackPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.server_key.chmod(0o600)
    return pki


def _cert_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


# --------------------------------------------------------------------------------------------
# Dovecot IMAP
# --------------------------------------------------------------------------------------------

_DOVECOT_CONF = """\
instance_name = dovecot-test-{port}
base_dir = {d}/run
state_dir = {d}/state
protocols = imap
listen = {host}
{ssl}
# Plain LOGIN stays allowed on the unencrypted port (even with TLS on), for the plain tests.
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_verbose = yes
# Tests of bad credentials must stay fast: no 2 s failure delay (0.5 s remains: Dovecot
# flushes failures on a 500 ms timer).
auth_failure_delay = 0
log_path = {d}/dovecot.log
default_internal_user = {user}
default_login_user = {user}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
mail_fsync = never
mail_max_userip_connections = 200
passdb {{
  driver = passwd-file
  # One file per user: Dovecot re-stats a passwd-file at most once a second, so a user added
  # to a shared file right after another login would be "unknown" for up to a second.
  args = scheme=PLAIN username_format=%u {d}/users/%u
{password_mechanisms}}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid={user} gid={group} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
{imaps}  }}
}}
# Disable the auth penalty (documented way: an unreachable anvil-auth-penalty socket); else
# one wrong password slows every later login from 127.0.0.1 by 2-4 s (measured).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  # Not auto-created: the service must create its processed folder itself.
  mailbox Archive {{
    special_use = \\Archive
  }}
}}
"""


_DOVECOT_TLS = """\
ssl = yes
ssl_cert = <{d}/tls/server.pem
ssl_key = <{d}/tls/server.key
ssl_min_protocol = TLSv1.2"""

_DOVECOT_IMAPS = """\
    address = {host}
    port = {ssl_port}
    ssl = yes
"""

# Dovecot 2.3's oauth2 passdb (configuration_manual/authentication/oauth2): the token from
# XOAUTH2/OAUTHBEARER is POSTed as token=... to the introspection endpoint (RFC 7662), which must
# answer active=true and the user's name. Passwords go to the passwd-file only, tokens only here.
_DOVECOT_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/dovecot-oauth2.conf.ext
}}
"""

_DOVECOT_OAUTH2_EXT = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


class Dovecot:
    """A private Dovecot IMAP server (plaintext LOGIN, Maildir, IDLE) on 127.0.0.1:<free port>.

    Each user has its own passwd-file (``users/<name>``), so ``add_user`` works while the
    server runs and the new user can log in at once. ``down()``/``restart()`` keep port, mail
    and users (for "server went away mid-batch" tests).

    ``tls=True`` adds a certificate for 127.0.0.1 and localhost from a throw-away CA
    (``ca_path``), STARTTLS on ``port`` and implicit TLS on ``ssl_port``. ``introspection_url``
    adds XOAUTH2/OAUTHBEARER logins whose tokens Dovecot checks at that RFC 7662 endpoint (see
    ``TokenIntrospection``). Without them the server is exactly the plain one.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        tls: bool = False,
        introspection_url: str | None = None,
    ) -> None:
        self.binary = binary or shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.host = HOST
        self.port = 0
        self.tls = tls
        self.introspection_url = introspection_url
        self.ssl_port = 0  # implicit TLS (IMAPS); 0 unless tls=True
        self.ca_path: Path | None = None  # PEM of the CA that signed the server certificate
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available(binary: str | None = None) -> bool:
        return os.access(binary or shutil.which("dovecot") or "/usr/sbin/dovecot", os.X_OK)

    @property
    def log_path(self) -> Path:
        assert self.dir is not None, "Dovecot not started"
        return self.dir / "dovecot.log"

    def start(self, users: Mapping[str, str] | None = None) -> Self:
        """Write config and users, launch the master and wait for the IMAP greeting."""
        if self._proc is not None:
            raise ServerError("Dovecot already running")
        self.dir = _server_dir("dovecot-")
        self.port = free_port()
        self.ssl_port = free_port() if self.tls else 0
        # Mail processes must not run as root (userdb uid 0 is rejected): use nobody when root.
        user = "nobody" if _is_root() else pwd.getpwuid(os.geteuid()).pw_name
        group = "nogroup" if _is_root() else _group_name(os.getegid())
        for sub in ("run", "state", "mail", "users"):
            (self.dir / sub).mkdir()
        if _is_root():
            shutil.chown(self.dir / "mail", user, group)
        (self.dir / "dovecot.conf").write_text(self._config(user, group))
        for name, password in (users or {}).items():
            self.add_user(name, password)
        atexit.register(self.stop)
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self, user: str, group: str) -> str:
        """dovecot.conf, plus the TLS files and the oauth2 passdb file when asked for."""
        assert self.dir is not None
        d, host = self.dir, self.host
        ssl, imaps = "ssl = no", "    port = 0\n"
        if self.tls:
            pki = make_test_pki(d / "tls")
            self.ca_path = pki.ca_cert
            ssl = _DOVECOT_TLS.format(d=d)
            imaps = _DOVECOT_IMAPS.format(host=host, ssl_port=self.ssl_port)
        mechanisms, password_mechanisms, oauth2_passdb = "plain login", "", ""
        if self.introspection_url:
            mechanisms = "plain login xoauth2 oauthbearer"
            password_mechanisms = "  mechanisms = plain login\n"
            oauth2_passdb = _DOVECOT_OAUTH2_PASSDB.format(d=d)
            ext = d / "dovecot-oauth2.conf.ext"
            ext.write_text(_DOVECOT_OAUTH2_EXT.format(url=self.introspection_url))
            ext.chmod(0o644)
        return _DOVECOT_CONF.format(
            d=d, host=host, port=self.port, user=user, group=group, ssl=ssl, imaps=imaps,
            mechanisms=mechanisms, password_mechanisms=password_mechanisms,
            oauth2_passdb=oauth2_passdb,
        )

    def add_user(self, name: str, password: str) -> None:
        """Add or replace a user; a running Dovecot sees it on the next login."""
        if not name or name.startswith(".") or any(c in name for c in "/:\n\r"):
            raise ValueError(f"unusable IMAP user name {name!r}")
        if any(c in password for c in ":\n\r"):
            raise ValueError("passwd-file passwords cannot contain ':' or newlines")
        assert self.dir is not None, "Dovecot not started"
        path = self.dir / "users" / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{PLAIN}}{password}\n")
        tmp.chmod(0o644)
        tmp.replace(path)  # atomic: a concurrent login never reads a half-written file

    def _launch(self) -> None:
        assert self.dir is not None
        conf = str(self.dir / "dovecot.conf")
        with open(self.dir / "stderr.log", "ab") as stderr:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", conf],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=self.dir,
                # Own process group: on SIGTERM the master leaves its imap/log/stats children
                # running (observed with 2.3.19), so stopping signals the whole group.
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"Dovecot exited with code {self._proc.returncode}")
            if _greets(self.host, self.port, b"* OK") and (
                not self.ssl_port or _accepts(self.host, self.ssl_port)
            ):
                return
            time.sleep(0.02)
        self._fail("Dovecot did not greet within 15 s")

    def _fail(self, why: str) -> None:
        assert self.dir is not None
        detail = _log_tail(self.dir / "stderr.log") + "\n" + _log_tail(self.log_path)
        self._terminate()
        raise ServerError(f"{why} ({self.dir}):\n{detail}")

    def _terminate(self) -> None:
        if self._proc is None:
            return
        group = self._proc.pid  # == process group id (start_new_session)
        _signal_group(group, signal.SIGTERM)
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            self._proc.wait(5)
        _signal_group(group, signal.SIGKILL)  # leftovers holding client connections
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same port with the same mail and users."""
        self._terminate()  # waits for the old master, else "Address already in use"
        self._launch()

    def down(self) -> None:
        """Take the server down (clients see EOF) but keep port, mail and users for restart()."""
        self._terminate()

    def stop(self) -> None:
        """Stop the server and delete its directory. Safe to call twice."""
        self._terminate()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self.ca_path = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self if self._proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _greets(host: str, port: int, prefix: bytes) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            return s.recv(64).startswith(prefix)
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# OAuth 2.0 token introspection (the identity provider's half of XOAUTH2)
# --------------------------------------------------------------------------------------------


class TokenIntrospection:
    """An RFC 7662 token introspection endpoint on 127.0.0.1, in a thread, for Dovecot.

    The only stand-in in the XOAUTH2 tests: an identity provider cannot run here, so this
    endpoint plays its part (a few lines on the standard library's http.server; a real IdP such
    as Keycloak is far too heavy for a fixture). Dovecot's oauth2 passdb POSTs ``token=...``
    and gets ``{"active": true, "username": ...}`` for a token issued here and not revoked.
    Everything else, the SASL XOAUTH2 exchange and the verdict, is the real Dovecot.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, bool]] = {}  # token -> (user, active)
        self._lock = threading.Lock()
        self.asked: list[str] = []  # tokens Dovecot asked about, in order
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "TokenIntrospection not started"
        return f"http://{HOST}:{self._server.server_address[1]}/introspect"

    def issue(self, user: str) -> str:
        """A new access token for ``user``."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (user, True)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            user, _ = self._tokens[token]
            self._tokens[token] = (user, False)

    def introspect(self, token: str) -> dict[str, Any]:
        """The answer for ``token``: active with its owner, or just inactive (RFC 7662 2.2)."""
        with self._lock:
            self.asked.append(token)
            user, active = self._tokens.get(token, ("", False))
        if not active:
            return {"active": False}
        return {"active": True, "username": user, "scope": "imap", "token_type": "Bearer"}

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((HOST, 0), _introspection_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-introspection", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _introspection_handler(endpoint: TokenIntrospection) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # Dovecot's HTTP client keeps the connection open

        def do_POST(self) -> None:
            if self.path != "/introspect":
                self._reply(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("ascii", "replace"))
            token = (form.get("token") or [""])[0]
            if not token:
                self._reply(400, {"error": "invalid_request"})
                return
            self._reply(200, endpoint.introspect(token))

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tokens are credentials: keep them out of the test output

    return Handler


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


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
        self._as_owner = ["runuser", "-u", "postgres", "--"] if _is_root() else []

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
        self.dir = _server_dir("pg-")
        if _is_root():
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
            log = _log_tail(self.dir / "postgres.log")
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


# --------------------------------------------------------------------------------------------
# SMTP sink
# --------------------------------------------------------------------------------------------

Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    message: EmailMessage = field(repr=False)
    login: str | None = None  # AUTH user, when the sink requires authentication
    peer: Any = None  # the client's (host, port): which connection brought it
    mail_options: tuple[str, ...] = ()  # MAIL FROM parameters (SMTPUTF8, BODY=8BITMIME...)


class SmtpSink:
    """An aiosmtpd server in its own thread that records messages and injects SMTP errors.

    ``stop()`` then ``start()`` reopens the same port, to simulate the relay going down.
    """

    def __init__(self, port: int | None = None, credentials: Mapping[str, str] | None = None,
                 smtputf8: bool = True):
        self.host = HOST
        self.port = port or free_port()
        self.credentials = dict(credentials) if credentials else None
        # Offer SMTPUTF8 (RFC 6531); aiosmtpd's Controller does by default, many relays do not.
        self.smtputf8 = smtputf8
        self.messages: list[Received] = []
        self.failures_injected = 0
        self._cond = threading.Condition()
        self._fail: list[tuple[Stage, int, str]] = []
        self._rejected: dict[str, tuple[int, str]] = {}
        self._controller: Controller | None = None

    # -- control (test thread) --------------------------------------------------------------
    def start(self) -> Self:
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            # AUTH over plain TCP on loopback; "required" is enforced in handle_MAIL because
            # aiosmtpd's auth_required without TLS emits a UserWarning (an error under pytest).
            kwargs = {"auth_require_tls": False, "authenticator": self._authenticate}
        # A Controller closes its loop on stop, so each start needs a new one. port=0 is not
        # supported by Controller (it self-connects to the configured port to check readiness).
        kwargs["enable_SMTPUTF8"] = self.smtputf8
        self._controller = Controller(self, hostname=self.host, port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def fail_next(
        self,
        n: int = 1,
        code: int = 451,
        text: str = "4.3.0 Try again later",
        stage: Stage = "DATA",
    ) -> None:
        """Answer the next ``n`` commands of ``stage`` with ``code text`` (4xx = temporary)."""
        with self._cond:
            self._fail.extend([(stage, code, text)] * n)

    def reject_rcpt(
        self, addr: str, code: int = 550, text: str = "5.1.1 Mailbox unavailable"
    ) -> None:
        """Refuse RCPT TO:<addr> (case-insensitive) from now on."""
        with self._cond:
            self._rejected[addr.lower()] = (code, text)

    def clear(self) -> None:
        """Forget received messages and pending error injections."""
        with self._cond:
            self.messages.clear()
            self._fail.clear()
            self._rejected.clear()
            self.failures_injected = 0

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least ``n`` messages arrived; return a snapshot of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise TimeoutError(f"SMTP sink got {len(self.messages)} of {n} messages")
            return list(self.messages)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- aiosmtpd handler hooks (server thread) -----------------------------------------------
    def _injected(self, stage: Stage) -> str | None:
        with self._cond:
            if self._fail and self._fail[0][0] == stage:
                _, code, text = self._fail.pop(0)
                self.failures_injected += 1
                return f"{code} {text}"
        return None

    async def handle_MAIL(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if reply := self._injected("MAIL"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if reply := self._injected("RCPT"):
            return reply
        with self._cond:
            rejected = self._rejected.get(address.lower())
        if rejected:
            return f"{rejected[0]} {rejected[1]}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if reply := self._injected("DATA"):
            return reply
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.auth_data else None
        received = Received(
            str(envelope.mail_from), list(envelope.rcpt_tos), content, parsed, login, session.peer,
            tuple(envelope.mail_options),
        )
        with self._cond:
            self.messages.append(received)
            self._cond.notify_all()
        return "250 2.0.0 OK queued"

    def _authenticate(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and self.credentials.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        # handled=False: aiosmtpd then answers 535 itself (its default handled=True sends nothing).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
