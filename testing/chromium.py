"""Headless Chromium for the page tests and benchmarks: where it is and how to start it.

Recipe 4 of /work/shared/notes/real-servers.md; Playwright drives it (``tests/fixtures_servers``).
"""

from __future__ import annotations

import os
import shutil

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



def chromium_path() -> str | None:
    """Path of a Chromium binary (``FEEDBACK_CHROMIUM`` overrides), or None if none is installed."""
    candidates = [os.environ.get("FEEDBACK_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)
