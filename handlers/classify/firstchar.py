"""Cue patterns that skip to the characters a match can start with, as ``re`` alone would not.

``re`` scans a text quickly only when it knows a pattern's first characters: a literal, a
character class, or an alternation whose every branch starts with a literal. Our cue lists
(``urgent.py``, ``restrict.py``) are alternations of groups (``(?:猫|狗|宠物)…``), so ``re``
tries every branch at every position of a letter: 30-90 µs per pattern on a 300-character
letter, most of the classifier's urgency scan.

:class:`FirstCharPattern` computes the set of characters a match can start with from ``re``'s
own parse of the pattern, and compiles ``[those](?<=(?=(PATTERN)).)``: a pattern that starts
with a character class, so ``re`` skips to candidate positions in C, and there checks the whole
pattern from the character before. Its matches are exactly the pattern's own (the same spans,
leftmost first, not overlapping; ``tests/handlers/classify/test_firstchar.py`` checks this on
every labelled letter), at a fifth of the cost.

Written by hand because no maintained library computes a Python regex's first-character set;
it reads ``re._parser``, a private module, so anything it does not know (a category such as
``\\d``, a negated class, a pattern that can match the empty string, a parser that changed)
falls back to the plain pattern: slower, never wrong.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

_sre: Any
_parse: Any
try:  # Python 3.11+ (sre_constants/sre_parse before)
    _sre = importlib.import_module("re._constants")
    _parse = importlib.import_module("re._parser")
except ImportError:  # another Python's re: plain patterns
    _sre = _parse = None

_LARGEST_RANGE = 256  # a wider class (a whole script) gains nothing from the scan


class _Unknown(Exception):
    """A construct whose first characters are not enumerated here."""


def _first(seq: Any) -> tuple[set[str], bool]:
    """(characters a match of the parsed sequence can start with, whether it can be empty)."""
    chars: set[str] = set()
    for op, av in seq:
        found, empty = _item(op, av)
        chars |= found
        if not empty:
            return chars, False
    return chars, True


def _item(op: Any, av: Any) -> tuple[set[str], bool]:
    if op is _sre.LITERAL:
        return {chr(av)}, False
    if op is _sre.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is _sre.LITERAL:
                chars.add(chr(value))
            elif kind is _sre.RANGE and value[1] - value[0] < _LARGEST_RANGE:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:  # NEGATE, CATEGORY, a wide range
                raise _Unknown(kind)
        return chars, False
    if op is _sre.BRANCH:
        chars, empty = set(), False
        for branch in av[1]:
            found, can_be_empty = _first(branch)
            chars |= found
            empty = empty or can_be_empty
        return chars, empty
    if op is _sre.SUBPATTERN:
        return _first(av[3])
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
        found, empty = _first(av[2])
        return found, empty or av[0] == 0
    if op in (_sre.ASSERT, _sre.ASSERT_NOT, _sre.AT):
        return set(), True  # zero width: leaving it out only widens the set
    raise _Unknown(op)


def first_chars(pattern: str) -> frozenset[str] | None:
    """The characters a match of ``pattern`` can start with, or None when unknown."""
    if _parse is None:
        return None
    try:
        chars, empty = _first(_parse.parse(pattern))
    except (_Unknown, re.error, AttributeError, TypeError, ValueError):
        return None
    return None if empty or not chars else frozenset(chars)


class FirstCharPattern:
    """A compiled pattern whose matches are found by a first-character scan when its first
    characters are known; :meth:`spans` and :meth:`search` give the plain pattern's matches."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        chars = first_chars(pattern)
        self._scan: re.Pattern[str] | None = None
        if chars is not None:
            start = "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"
            try:
                self._scan = re.compile(start + "(?<=(?=(" + pattern + "))(?s:.))")
            except re.error:  # e.g. a pattern with inline global flags: scan it plainly
                self._scan = None

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of each match, as ``pattern.finditer`` finds them (never empty)."""
        if self._scan is None:
            for m in self.pattern.finditer(text):
                yield m.span()
            return
        last = 0
        for m in self._scan.finditer(text):
            start, end = m.span(1)
            if start >= last:  # one inside the previous match: finditer would not see it
                last = end
                yield start, end

    def search(self, text: str) -> tuple[int, int] | None:
        """(start, end) of the first match, or None."""
        m = (self._scan or self.pattern).search(text)
        if m is None:
            return None
        return m.span(1) if self._scan is not None else m.span()

    def sub(self, repl: str, text: str) -> str:
        """``pattern.sub(repl, text)`` for a literal ``repl`` (no group references)."""
        pieces: list[str] = []
        last = 0
        for start, end in self.spans(text):
            pieces += (text[last:start], repl)
            last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)
