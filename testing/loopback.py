"""What every loopback test server shares: the host, free ports, its directory, its errors.

Every server in ``testing/`` binds 127.0.0.1 on a free port, keeps its files in a fresh
``tempfile.mkdtemp()`` dir directly under /tmp (the unprivileged server users cannot enter
pytest's 0700 ``tmp_path``), runs as a child of this process and is stopped by PID.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

HOST = "127.0.0.1"

class ServerError(RuntimeError):
    """A server did not start or stop; the message carries the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]




def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def server_dir(prefix: str) -> Path:
    # Directly under /tmp with 0755 so the unprivileged server users can traverse it.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def is_root() -> bool:
    return os.geteuid() == 0
