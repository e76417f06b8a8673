"""Tracking numbers, query codes and signed Message-IDs.

A tracking number is read aloud on the phone, so its alphabet leaves out 0/O and 1/I; it is
random (40 bits) so that nobody can walk the sequence. A query code is the private half that a
citizen needs to see the status; only its keyed hash is stored. Every outgoing Message-ID carries
an HMAC under the service secret (with the tracking number, for mail about a case), so that a
reply can be matched to its submission, a forged reference is refused, and our own mail coming
back is recognised by something only we can produce, never by a domain.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_BODY = f"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}"


def new_tracking_no(prefix: str = "FK") -> str:
    return new_tracking_nos(1, prefix)[0]


def new_tracking_nos(n: int, prefix: str = "FK") -> list[str]:
    """``n`` random numbers: 40 bits each, 5 per character of the 32-letter alphabet, all from
    one call for randomness (a system call each was a tenth of the web form's batch write)."""
    pool = secrets.token_bytes(5 * n)
    out = []
    for k in range(n):
        bits = int.from_bytes(pool[5 * k : 5 * k + 5], "big")
        chars = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(8))
        core = f"{chars[:4]}-{chars[4:]}"
        out.append(f"{prefix}-{core}" if prefix else core)
    return out


def tracking_pattern(prefix: str = "FK") -> re.Pattern[str]:
    """Finds a tracking number in free text (a subject), tolerant of case and spacing."""
    head = rf"{prefix}\s*[-_ ]?\s*" if prefix else ""
    return re.compile(rf"(?<![A-Z0-9]){head}({_BODY})(?![A-Z0-9])", re.IGNORECASE)


def find_tracking_no(text: str, prefix: str = "FK") -> str | None:
    m = tracking_pattern(prefix).search(text or "")
    if not m:
        return None
    core = m.group(1).upper()
    return f"{prefix}-{core}" if prefix else core


def query_code_for(secret: bytes, tracking_no: str) -> str:
    """The private six-digit code that goes with a tracking number.

    Derived with the service secret rather than stored, so that every channel (the success page,
    the acknowledgement, a re-sent acknowledgement) can show it without the plain code ever being
    written down; the database keeps only :func:`hash_query_code`.
    """
    mac = hmac.new(secret, f"query-code:{tracking_no}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(mac[:8], 'big') % 10**6:06d}"


def hash_query_code(secret: bytes, tracking_no: str, code: str) -> str:
    msg = f"query-hash:{tracking_no}:{code.strip()}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def check_query_code(secret: bytes, tracking_no: str, code: str, stored: str | None) -> bool:
    expected = hash_query_code(secret, tracking_no, code)
    return hmac.compare_digest(expected, stored or "0" * len(expected))


def _sig(secret: bytes, purpose: str, tag: str, nonce: str) -> str:
    msg = f"{purpose}.{tag}.{nonce}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:16]


# Purposes whose tag is not a tracking number: a reply to such a mail belongs to no case.
UNTRACKED_PURPOSES = frozenset({"digest"})


def signed_message_id(secret: bytes, purpose: str, tag: str, domain: str) -> str:
    """``<purpose>.<tag>.<nonce>.<hmac>@domain`` without angle brackets.

    ``tag`` is a tracking number for mail about a case (ack, reply), or another label such as a
    digest's week; only its letters and digits are kept. The HMAC under the service secret is
    what makes the ID ours (:func:`signed_parts`); ``domain`` (``Settings.message_id_domain``)
    only keeps it globally unique and is not signed, so IDs sent under an earlier domain still
    verify after it changes.
    """
    nonce = secrets.token_hex(4)
    tag = re.sub(r"[^A-Za-z0-9]", "", tag)
    return f"{purpose}.{tag}.{nonce}.{_sig(secret, purpose, tag, nonce)}@{domain}"


_MSGID = re.compile(r"^([a-z]+)\.([A-Za-z0-9]+)\.([0-9a-f]{8})\.([0-9a-f]{16})@(.+)$")


def signed_parts(secret: bytes, message_id: str) -> tuple[str, str] | None:
    """(purpose, tag) of a Message-ID we signed, whatever its domain; None for anyone else's.

    This is how our own mail is told from a citizen's: only the holder of the secret can
    produce the HMAC, while any domain (a shared provider's above all) is written by many.
    """
    m = _MSGID.match(message_id.strip().strip("<>"))
    if not m:
        return None
    purpose, tag, nonce, sig = m.group(1, 2, 3, 4)
    if not secret or not hmac.compare_digest(sig, _sig(secret, purpose, tag, nonce)):
        return None
    return purpose, tag


def verify_message_id(secret: bytes, message_id: str, prefix: str = "FK") -> str | None:
    """The tracking number behind one of our Message-IDs, or None if it is not ours, forged, or
    about no case (a digest)."""
    signed = signed_parts(secret, message_id)
    if signed is None or signed[0] in UNTRACKED_PURPOSES:
        return None
    tn = signed[1]
    body = tn[len(prefix):] if prefix and tn.startswith(prefix) else tn
    if len(body) != 8 or body.strip(ALPHABET):
        return None
    core = f"{body[:4]}-{body[4:]}"
    return f"{prefix}-{core}" if prefix else core
