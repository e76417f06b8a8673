"""An SMTP sink (aiosmtpd in a thread) that records what it accepts and injects SMTP errors.

It stands for the commission's relay: the outbox, digest and notice tests read what arrived here.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from testing.loopback import HOST, free_port

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
