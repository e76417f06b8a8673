"""Small text rules shared by the steps: what may go into a header or a log line."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def one_line(value: str | None, limit: int = 200) -> str:
    """A value safe for a mail header: no CR/LF or other control characters, bounded length.

    Input from citizens ends up in headers (a display name, a subject quoted in our reply);
    folding every control character to a space is what makes header injection impossible.
    """
    if not value:
        return ""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", value)).strip()
    return text[:limit]


def excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
