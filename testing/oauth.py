"""An OAuth 2.0 token introspection endpoint (the identity provider's half of XOAUTH2)."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

from testing.loopback import HOST


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
