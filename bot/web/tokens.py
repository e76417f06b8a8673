"""Signed form tokens: CSRF protection and idempotency in one hidden field.

Each rendering of the public form carries ``nonce.timestamp.signature``. The signature proves the
form came from us and is recent (another site cannot mint one, and the Origin check refuses
cross-site posts); the nonce is the idempotency key, so a double click or a reload of the POST
stores one submission, not two. Stateless, so it works without cookies and across instances.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from bot.web.params import ascii_int

MAX_AGE_SECONDS = 24 * 3600


def _sign(secret: bytes, nonce: str, ts: int) -> str:
    return hmac.new(secret, f"form|{nonce}|{ts}".encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret: bytes) -> str:
    nonce = secrets.token_urlsafe(16)
    ts = int(time.time())
    return f"{nonce}.{ts}.{_sign(secret, nonce, ts)}"


def verify(secret: bytes, token: str | None, now: float | None = None) -> str | None:
    """The nonce of a valid, unexpired token, else None."""
    if not token or len(token) > 200:
        return None
    parts = token.split(".")
    ts = ascii_int(parts[1]) if len(parts) == 3 else None
    if ts is None:
        return None
    nonce, sig = parts[0], parts[2]
    if not hmac.compare_digest(sig, _sign(secret, nonce, ts)):
        return None
    age = (now or time.time()) - ts
    if age < -300 or age > MAX_AGE_SECONDS:
        return None
    return nonce
