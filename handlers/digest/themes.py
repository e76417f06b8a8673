"""The period's themes: groups of letters about one matter, as a leader means one.

A theme is a campaign of near-copies, or many people writing about one incident, one unit, one
policy. Letters are compared by the repeat matcher's measure (``handlers.repeats``: the Jaccard
similarity of the character n-grams of each letter's own words, digit runs masked, what it
quotes of the report cut out, n-grams common to all letters left out), but grouped differently:
repeat links are pairs, and taking the connected components of pairs chains (A is like B, B
like C, …) until one "theme" holds a thousand unrelated letters of one category. Here a theme
is led by its first letter, and a later letter joins the theme whose first letter it is most
like, at :data:`THEME_JACCARD` or more (leader clustering): every letter of a theme is like its
first letter, so a theme cannot drift, whatever the order of the week.

Speed: the matcher shingles and signs one letter at a time (``handlers.repeats.Shingler``,
datasketch's MinHash: 0.3–0.5 ms a letter); a digest compares a whole week at once (up to
5,000 letters), so after :func:`handlers.repeats.own_words` the n-grams of all letters are cut,
hashed and deduplicated in a few numpy passes over the week's text joined together. Candidates
come from a bottom-k sketch (the :data:`SKETCH` smallest hashes of each letter) of the themes'
first letters only, and are checked on their exact n-gram sets. No library does this batch
(datasketch signs one set per call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain

import numpy as np

from handlers.repeats import member_sorted, run_keys

# Of the repeat pairs' rewordings (different citizens, one event; tests/data/repeat_pairs.jsonl)
# half reach 0.1 with bigrams, no unrelated pair of the set reaches 0.04, and of the 2 million
# pairs of the classifier's corpus 405 do (most of them the same question asked twice).
THEME_JACCARD = 0.1
QUOTE_RUN = 8  # characters: a run this long found in the report is a quotation of it
SKETCH = 48  # bottom-k: a letter of 48 n-grams or fewer (most letters) is indexed whole
# A candidate shares at least two of a letter's sketched n-grams: one shared bigram is no
# matter in common, and at THEME_JACCARD two bottom-48 sketches share about five.
MIN_HITS = 2
COMMON_SHARE = 0.01  # an n-gram in this share of the shipped letters is not compared
_SEP = 0  # between two letters' words: own_words keeps no control character
# splitmix64's finaliser constants: every bit of a key depends on every character of the n-gram,
# so the smallest keys of a letter are a fair sample of it (the bottom-k sketch needs that).
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _runs(codes: np.ndarray, n: int) -> np.ndarray:
    """A well-mixed 64-bit key for each n-character run of ``codes``."""
    return _mix(run_keys(codes, n))


def _digit_mask() -> int:
    """The character own_words puts for a digit run (a mask: no n-gram spans it)."""
    from handlers.repeats import own_words

    return ord(own_words("", "0"))


def _cut(words: Sequence[str], ngram: int, report: np.ndarray, common: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """(keys, starts): the sorted distinct n-gram keys of each of ``words``, the i-th's at
    ``keys[starts[i]:starts[i + 1]]``; no n-gram spans a digit mask or a quotation of the
    report (``report``: sorted keys of its :data:`QUOTE_RUN`-runs), none is in ``common``."""
    mask, sep = _digit_mask(), _SEP
    joined = chr(sep).join(words) + chr(sep)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(words)), [len(w) + 1 for w in words])
    if len(report):
        hit = np.flatnonzero(member_sorted(_runs(codes, QUOTE_RUN), report))
        if len(hit):
            cover = np.bincount(hit, minlength=len(codes) + QUOTE_RUN)
            cover -= np.bincount(hit + QUOTE_RUN, minlength=len(codes) + QUOTE_RUN)
            codes = codes.copy()
            codes[np.cumsum(cover)[:len(codes)] > 0] = mask
    keys = _runs(codes, ngram)
    blocked = (codes == mask) | (codes == sep)
    spans = np.zeros(len(keys), dtype=bool)
    for k in range(ngram):
        spans |= blocked[k:k + len(keys)]
    keep = ~spans & ~member_sorted(keys, common)
    keys, owner = keys[keep], owner[:len(keys)][keep]
    order = np.lexsort((keys, owner))
    keys, owner = keys[order], owner[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (owner[1:] != owner[:-1])
    keys, owner = keys[first], owner[first]
    return keys, np.searchsorted(owner, np.arange(len(words) + 1))


@lru_cache(maxsize=4)
def _reference(ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(the report's quotation runs, the n-grams common to the shipped letters), once per
    process, in this module's mixed keys. The repeat matcher leaves out lists made alike
    (``Shingler``'s report runs, :func:`handlers.repeats.shipped_common`), but its common list
    counts the n-grams of the letters' report quotations too (834 against 807 bigrams here)."""
    from handlers.classify.store import shipped_examples
    from handlers.repeats import load_report_text, own_words

    report = np.unique(_runs(np.frombuffer(own_words("", load_report_text()).encode(
        "utf-32-le"), dtype=np.uint32).astype(np.uint64), QUOTE_RUN))
    letters = [own_words(e.get("subject") or "", e.get("body") or "")
               for e in shipped_examples()]
    keys, _starts = _cut(letters, ngram, report, np.empty(0, dtype=np.uint64))
    common, counts = np.unique(keys, return_counts=True)
    return report, common[counts >= max(2, COMMON_SHARE * len(letters))]


def shingle(texts: Sequence[tuple[str, str]], ngram: int) -> list[np.ndarray]:
    """The n-gram keys (sorted, distinct) of each (subject, text), as the themes compare them."""
    from handlers.repeats import own_words

    report, common = _reference(ngram)
    keys, starts = _cut([own_words(s, t) for s, t in texts], ngram, report, common)
    return [keys[starts[i]:starts[i + 1]] for i in range(len(texts))]


def leaders(sets: Sequence[np.ndarray], linked: Sequence[Sequence[int]],
            threshold: float = THEME_JACCARD) -> list[int]:
    """For each letter (in the order received), the index of the letter that leads its theme
    (itself for a first letter or a letter like no theme).

    A letter joins the theme whose first letter it is most like, at ``threshold`` or more; a
    letter with the very n-grams of an earlier one joins that one's theme; failing both, a
    letter linked at intake (``linked[i]``: earlier letters, the same writer or the same event)
    joins the theme an earlier letter it is linked to leads. Either way a member is one step
    from its leader: nothing chains.
    """
    lead = list(range(len(sets)))
    is_leader = [False] * len(sets)
    buckets: dict[int, list[int]] = {}
    members: dict[int, frozenset[int]] = {}  # the leaders' n-grams
    sizes: dict[int, int] = {}
    same: dict[bytes, int] = {}
    for i, keys in enumerate(sets):
        if not len(keys):
            continue
        raw = keys.tobytes()
        if raw in same:
            lead[i] = lead[same[raw]]
            continue
        same[raw] = i
        sketch = keys[:SKETCH].tolist()  # the keys are mixed hashes, sorted: the bottom k
        hits = Counter(chain.from_iterable(buckets[h] for h in sketch if h in buckets))
        mine, size = None, len(keys)
        best, score = -1, threshold
        for c, n in hits.items():
            # Cheap bounds first: two letters of very different lengths cannot be alike, and
            # two letters sketched whole share exactly ``n`` n-grams.
            other = sizes[c]
            if n < MIN_HITS or min(size, other) < threshold * max(size, other) or (
                    size <= SKETCH and other <= SKETCH
                    and n < threshold * (size + other) / (1 + threshold)):
                continue
            mine = frozenset(keys.tolist()) if mine is None else mine
            common = len(mine & members[c])
            j = common / (size + other - common)
            if j >= score:
                best, score = c, j
        if best < 0:
            best = next((k for k in linked[i] if is_leader[k]), -1)
        if best >= 0:
            lead[i] = best
            continue
        is_leader[i] = True
        members[i], sizes[i] = frozenset(keys.tolist()) if mine is None else mine, size
        for h in sketch:
            buckets.setdefault(h, []).append(i)
    for i in range(len(sets)):  # letters without n-grams: only a link puts them in a theme
        if not len(sets[i]) and lead[i] == i:
            lead[i] = next((k for k in linked[i] if is_leader[k]), i)
    return lead
