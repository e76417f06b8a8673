"""A private Dovecot IMAP server on loopback: plain, STARTTLS/IMAPS, XOAUTH2; a mailbox account.

Recipes: /work/shared/notes/real-servers.md. Imports no pytest, so ``bench/`` uses it too (the
pytest fixtures live in ``tests/fixtures_servers.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Self

from testing.loopback import HOST, ServerError, free_port, is_root, log_tail, server_dir
from testing.pki import make_test_pki

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
        self.dir = server_dir("dovecot-")
        self.port = free_port()
        self.ssl_port = free_port() if self.tls else 0
        # Mail processes must not run as root (userdb uid 0 is rejected): use nobody when root.
        user = "nobody" if is_root() else pwd.getpwuid(os.geteuid()).pw_name
        group = "nogroup" if is_root() else _group_name(os.getegid())
        for sub in ("run", "state", "mail", "users"):
            (self.dir / sub).mkdir()
        if is_root():
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
        detail = log_tail(self.dir / "stderr.log") + "\n" + log_tail(self.log_path)
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




class ImapAccount(NamedTuple):
    """One user's mailbox on a test Dovecot: what a client needs to log in."""

    host: str
    port: int
    user: str
    password: str
