"""The blocking half of the IMAP poller: one imapclient connection, used from one worker thread.

``bot.sources.imap`` runs every method here in its own single-thread executor, so the event loop
never waits on the network. This module knows IMAP only: connecting (SSL, STARTTLS, or plain on
loopback; certificates and host names are always verified, against the system store or the
private CA in ``imap.ca_file``), password or XOAUTH2 login, identifying the client (RFC 2971
ID, which imap.163.com requires before SELECT), creating the processed folder,
listing, fetching with ``BODY.PEEK[]`` (reading never sets ``\\Seen``), marking and moving, and
IDLE. It never deletes mail: without MOVE it copies, flags ``\\Deleted`` and expunges only those
UIDs (UIDPLUS), and without UIDPLUS it leaves the flagged originals for the mail admin rather than
EXPUNGE the folder.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import shlex
import socket
import ssl
import subprocess
import time
from datetime import datetime
from importlib import metadata

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError

from bot.config import ImapSettings

log = logging.getLogger(__name__)

TIMEOUT = 30.0
TOKEN_COMMAND_TIMEOUT = 30.0


def client_id() -> dict[str, str]:
    """Our RFC 2971 ID fields: what the client is, nothing about the host or the account."""
    try:
        version = metadata.version("feedback-bot")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "0"
    return {"name": "feedback-bot", "version": version, "vendor": "feedback-bot"}


class ImapConfigError(Exception):
    """The [imap] settings cannot work; retrying will not help until they are changed."""


class ImapCertificateError(ConnectionError):
    """The server's certificate was refused. Retried: the server may renew it, or be fixed."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def oauth2_token(command: str) -> str:
    """Run ``imap.oauth2_token_command`` and return its output, the access token.

    Run without a shell (shlex split) and never logged: the output is a credential.
    """
    try:
        done = subprocess.run(shlex.split(command), capture_output=True,
                              timeout=TOKEN_COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapConfigError(f"oauth2_token_command failed: {exc.__class__.__name__}") from exc
    token = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not token:
        raise ImapConfigError(
            f"oauth2_token_command exited with {done.returncode} and "
            f"{'no' if not token else 'some'} output"
        )
    return token


def tls_context(settings: ImapSettings) -> ssl.SSLContext:
    """A verifying TLS context: the system's CA store, or only the CAs in ``imap.ca_file``.

    There is deliberately no way to turn verification off: a mail server with a private
    certificate is trusted by naming its CA. The file is read on every connection attempt, so
    a fixed file is picked up by the next retry without a restart.
    """
    try:
        return ssl.create_default_context(cafile=settings.ca_file or None)
    except ssl.SSLError as exc:
        why = f"no PEM CA certificate in it ({exc.reason})"
    except OSError as exc:  # missing, unreadable, a directory
        why = exc.strerror or exc.__class__.__name__
    raise ImapConfigError(f"imap.ca_file {settings.ca_file!r} cannot be used: {why}")


class MailboxClient:
    """One logged-in connection with the watched folder selected."""

    def __init__(self, settings: ImapSettings) -> None:
        self.s = settings
        self.client: IMAPClient | None = None
        self.uidvalidity = 0
        self.can_idle = False
        self.can_move = False
        self.can_uidplus = False
        self.server_id: dict[str, str] | None = None  # the server's answer to our ID
        self._idle_since: float | None = None

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        s = self.s
        if s.folder == s.processed_folder:
            raise ImapConfigError("imap.processed_folder must differ from imap.folder")
        if not s.ssl and not s.starttls and not is_loopback(s.host):
            raise ImapConfigError("plain IMAP (no ssl, no starttls) is only allowed on loopback")
        context = tls_context(s) if (s.ssl or s.starttls) else None
        try:
            self.client = IMAPClient(s.host, port=s.port, ssl=s.ssl, ssl_context=context,
                                     timeout=TIMEOUT)
            if s.starttls and not s.ssl:
                self.client.starttls(context)
            self._log_in_and_select()
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise ImapCertificateError(
                f"certificate of {s.host}:{s.port} refused ({exc.verify_message}); if the "
                "server uses a private CA, set imap.ca_file to that CA's PEM file"
            ) from exc
        except BaseException:
            self.close()  # leave no half-open connection behind for the next attempt
            raise

    def _log_in_and_select(self) -> None:
        s, client = self.s, self.client
        assert client is not None
        client.normalise_times = False  # aware INTERNALDATE values
        if s.oauth2_token_command:
            client.oauth2_login(s.user, oauth2_token(s.oauth2_token_command))
        else:
            client.login(s.user, s.password.get_secret_value())
        self._identify()
        self.can_idle = s.idle and client.has_capability("IDLE")
        self.can_move = client.has_capability("MOVE")
        self.can_uidplus = client.has_capability("UIDPLUS")
        self._ensure_folder(s.processed_folder)
        selected = client.select_folder(s.folder)
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        self.announced()  # the SELECT's EXISTS is the folder's size, not news

    def _identify(self) -> None:
        """Send ID (RFC 2971) after login, before any SELECT, when the server offers it.

        imap.163.com answers ``NO SELECT Unsafe Login. Please contact kefu@188.com for help``
        to a client that has not sent ID (imapclient #544, OfflineIMAP #696, himalaya #651).
        ID is only a courtesy to every other server, so a refusal is logged and the connection
        goes on: if the server then refuses SELECT, that error is the one reported.
        """
        client = self.client
        assert client is not None
        if not client.has_capability("ID"):
            return
        try:
            answer = client.id_(client_id())
        except IMAPClientError as exc:
            log.warning("imap: the server refused our ID command (%s); continuing without",
                        str(exc)[:200])
            return
        self.server_id = _id_fields(answer)

    def _ensure_folder(self, name: str) -> None:
        assert self.client is not None
        if self.client.folder_exists(name):
            return
        try:
            self.client.create_folder(name)
        except IMAPClientError:
            if not self.client.folder_exists(name):  # else another instance just created it
                raise
        self.client.subscribe_folder(name)

    def interrupt(self) -> None:
        """Break a blocking call from another thread (used when the poller is stopped)."""
        if self.client is None:
            return
        with contextlib.suppress(OSError, AttributeError):
            self.client.socket().shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if self._idle_since is not None:
                client.idle_done()
            client.logout()
        except Exception:  # closing a dead connection: nothing to save
            with contextlib.suppress(Exception):
                client.shutdown()
        self._idle_since = None

    # -- reading -------------------------------------------------------------------------------
    def present(self) -> list[int]:
        """UIDs in the watched folder that are not flagged \\Deleted, ascending."""
        assert self.client is not None
        self.announced()  # what was announced before this SEARCH, the SEARCH sees for itself
        return sorted(self.client.search(["NOT", "DELETED"]))

    def announced(self) -> bool:
        """Whether the server announced new mail (EXISTS, RECENT) in its answer to a command
        since the last call, and forget it.

        A server tells of new mail once, in the answer to whatever command runs when it notices:
        a mail that lands during the SEARCH is announced there, after the SEARCH's result was
        made, and not again in the IDLE that follows (seen against Dovecot: the mail then waited
        for the poll interval). imaplib files such untagged answers in ``untagged_responses``;
        imapclient has no public reader of them for commands other than NOOP and IDLE, hence
        its private ``_imap``."""
        assert self.client is not None
        untagged = self.client._imap.untagged_responses
        news = [untagged.pop(kind, None) for kind in ("EXISTS", "RECENT")]
        return any(news)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        assert self.client is not None
        data = self.client.fetch(uids, ["RFC822.SIZE"])
        return {uid: int(item.get(b"RFC822.SIZE", 0)) for uid, item in data.items()}

    def fetch(self, uids: list[int]) -> dict[int, tuple[bytes, datetime | None]]:
        """Exact bytes and arrival time per UID; BODY.PEEK[] leaves the \\Seen flag alone."""
        assert self.client is not None
        data = self.client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        out: dict[int, tuple[bytes, datetime | None]] = {}
        for uid, item in data.items():
            body = item.get(b"BODY[]")
            if body is None:
                continue  # a FETCH update without the body (e.g. a flag change): not ours
            when = item.get(b"INTERNALDATE")
            out[uid] = (bytes(body), when if isinstance(when, datetime) else None)
        return out

    # -- after commit --------------------------------------------------------------------------
    def finish(self, uids: list[int]) -> None:
        """Mark stored mail \\Seen and move it to the processed folder. ``STORE .SILENT``: the
        server's answer of each message's new flags was read and dropped (a third of this
        call's CPU)."""
        assert self.client is not None
        if not uids:
            return
        self.client.add_flags(uids, [SEEN], silent=True)
        if self.can_move:
            self.client.move(uids, self.s.processed_folder)
            return
        self.client.copy(uids, self.s.processed_folder)
        self.client.add_flags(uids, [DELETED], silent=True)
        if self.can_uidplus:
            self.client.uid_expunge(uids)

    # -- waiting -------------------------------------------------------------------------------
    def idle_wait(self, timeout: float, reissue_after: float) -> bool:
        """Wait in IDLE up to ``timeout`` s; True when the server announced new mail.

        IDLE is re-issued after ``reissue_after`` s: RFC 2177 servers may drop a client that
        idles for 30 minutes.
        """
        assert self.client is not None
        now = time.monotonic()
        if self._idle_since is not None and now - self._idle_since > reissue_after:
            self.idle_end()
        if self._idle_since is None:
            if self.announced():  # news came with an earlier command's answer: look now
                return True
            self.client.idle()
            self._idle_since = time.monotonic()
        started = time.monotonic()
        responses = self.client.idle_check(timeout=timeout)
        if any(r and r[0] == b"BYE" for r in responses):
            raise ConnectionAbortedError("IMAP server said BYE")
        if not responses and time.monotonic() - started < timeout and self._at_eof():
            # imapclient's idle_check returns [] at EOF instead of raising (imapclient 3.x/4.x)
            raise ConnectionAbortedError("IMAP server closed the connection")
        return any(len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT") for r in responses)

    def _at_eof(self) -> bool:
        assert self.client is not None
        sock = self.client.socket()
        if sock.fileno() < 0:
            return True  # already closed on our side
        try:
            if not isinstance(sock, ssl.SSLSocket):
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            if sock.pending():
                return False  # decrypted data still waiting to be read
            # SSLSocket.recv() refuses flags: peek at the TCP stream beneath through a duplicate
            # descriptor (closing the duplicate leaves the connection open). An empty peek is the
            # server's FIN; bytes there are a TLS record the next read will handle.
            with socket.fromfd(sock.fileno(), sock.family, sock.type) as raw:
                return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def idle_end(self) -> None:
        if self.client is not None and self._idle_since is not None:
            self._idle_since = None
            self.client.idle_done()

    def noop(self) -> None:
        assert self.client is not None
        self.client.noop()


def _id_fields(answer: object) -> dict[str, str]:
    """The server's ID answer (``(b"name", b"Dovecot", ...)`` or NIL) as a dict of text."""
    items = answer[0] if isinstance(answer, (list, tuple)) and len(answer) == 1 else answer
    if not isinstance(items, (list, tuple)):
        return {}
    text = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items]
    return dict(zip(text[::2], text[1::2], strict=False))
