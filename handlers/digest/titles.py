"""Short category names for a phone screen and a chart legend, never cut mid-word.

The report names its ten problem categories in long sentences ("贯彻落实《中国共产党政法工作条
例》,高质量履职尽责尚存相对薄弱环节") and gives no short titles of its own. A short name is the
title's leading phrases (cut where the report's own punctuation — ，、；：— ends a phrase) that
fit the limit; when even the first phrase is too long, its leading words (jieba's segmentation)
that fit, followed by "…". A cut never falls inside quotation marks or book-title marks
(‘不忘初心、牢记使命’, 《……》), where a comma or 、 belongs to the quoted name. No library
shortens Chinese titles; this is the one rule the digest, its chart and the console share.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

LIMIT = 18  # CJK characters: a legend line or a table cell of a 360 px screen
ELLIPSIS = "…"
_PHRASE_END = frozenset("，,、；;：:")
_OPEN = {"‘": "’", "“": "”", "《": "》", "「": "」", "『": "』", "（": "）", "(": ")",
         "'": "'", '"': '"'}
_SPACE = re.compile(r"\s+")


def _quoted(title: str) -> list[bool]:
    """Per character: inside a quotation or a book title (a cut there would split a name)."""
    inside = [False] * len(title)
    closer: str | None = None
    for i, ch in enumerate(title):
        if closer is not None:
            inside[i] = ch != closer
            if ch == closer:
                closer = None
        elif ch in _OPEN:
            closer = _OPEN[ch]
    return inside


@lru_cache(maxsize=1)
def _tokenizer():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _word_ends(title: str) -> list[int]:
    """Positions after each word (jieba), the places a title may be cut when no phrase fits."""
    ends, at = [], 0
    for word in _tokenizer().cut(title, HMM=False):
        at += len(word)
        ends.append(at)
    return ends


@lru_cache(maxsize=256)
def short_title(title: str, limit: int = LIMIT) -> str:
    """``title`` in at most ``limit`` characters (the ellipsis included), cut at a phrase end,
    else at a word end, never inside quotation or book-title marks."""
    title = _SPACE.sub("", title.strip())
    if len(title) <= limit:
        return title
    inside = _quoted(title)
    phrase_ends = [i for i, ch in enumerate(title) if ch in _PHRASE_END and not inside[i]]
    fits = [i for i in phrase_ends if 0 < i <= limit - 1]
    if fits:
        return title[:fits[-1]] + ELLIPSIS
    # A cut before position e keeps title[:e]; it splits a quotation when title[e] is inside one.
    words = [e for e in _word_ends(title) if e <= limit - 1 and not inside[e]]
    if words:
        return title[:words[-1]] + ELLIPSIS
    return title[:limit - 1] + ELLIPSIS  # one word longer than the limit: nothing better to do
