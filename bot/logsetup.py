"""Logging: one JSON object per line in production, readable lines in a terminal.

Personal data stays out of logs: code logs ids and counts, and :func:`mask_email` where an address
must appear. Settings are never logged whole (secrets are SecretStr anyway).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def mask_email(addr: str | None) -> str:
    if not addr or "@" not in addr:
        return "-"
    local, _, domain = addr.partition("@")
    return f"{local[:1]}***@{domain}"


def setup(level: str = "INFO", fmt: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler.setFormatter(
        JsonFormatter() if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "jieba", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
