"""Attachment files: each stored once, under its SHA-256, as ``root/sha[:2]/sha``.

The one place that knows this layout. The store step puts mail attachments here and the web
form its uploads (at POST time; the raw payload lists their digests); the console reads a file
by its path; purge removes the files no row refers to any more. Content addressing makes a
retry write the same file, never a second one, and lets two letters share one photo. The
database rows that describe the files (name, type, size, digest) are ``storage.submissions``'s;
this module touches the filesystem only.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobStore:
    """The files under one root directory (``intake.attachments_dir``)."""

    root: Path

    def path(self, sha256: str) -> Path:
        """Where the file with this digest is kept (whether or not it exists). Only a
        lower-case hex SHA-256 names a file, so no digest read from a row leads out of root."""
        if not _DIGEST.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` unless a file with its digest is there already; return the digest.

        Written to a temporary file of this thread's own and renamed into place, so a reader
        never sees half a file, and two writers of the same content at once (two citizens
        posting the same photo: the form writes uploads in threads) both succeed."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                tmp.write_bytes(data)
                tmp.replace(path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return digest

    def remove(self, digests: Iterable[str]) -> int:
        """Delete these files (the caller made sure no row refers to them); returns how many
        were there."""
        removed = 0
        for sha256 in digests:
            try:
                self.path(sha256).unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed
