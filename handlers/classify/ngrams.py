"""Known character n-grams in a batch of documents, found with numpy alone.

Shared by training (``features.CharNgramCounter``, which wraps the hits in a scipy matrix) and
by the service's ``Scorer`` (which must not import scipy), so both count exactly the same
n-grams. scikit-learn's ``CountVectorizer(analyzer="char")`` builds every n-gram as a Python
string, about 270 µs for a 300-character message; here each n-gram is packed into one integer
(21 bits per code point, so a 3-gram fits in 63) and looked up in the sorted vocabulary with
``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BITS = 21  # every Unicode code point fits in 21 bits


def pack(codes: np.ndarray, n: int) -> np.ndarray:
    """Integer key of every n-gram starting at each position of ``codes`` (uint64)."""
    length = len(codes) - n + 1
    key = np.zeros(max(length, 0), dtype=np.uint64)
    for k in range(n):
        key = (key << np.uint64(_BITS)) | codes[k : k + length]
    return key


def gram_key(gram: str) -> int:
    """The integer ``pack`` gives the n-gram ``gram``."""
    key = 0
    for ch in gram:
        key = (key << _BITS) | ord(ch)
    return key


def ngram_hits(keys: np.ndarray, docs: Sequence[str], max_n: int) -> tuple[np.ndarray, np.ndarray]:
    """(document, column) of every occurrence of a known 1..max_n-gram, unsorted, repeats kept.

    ``keys`` is the vocabulary as sorted ``gram_key`` values; a column is an index into it."""
    # One pass over the batch: documents joined by NUL, and n-grams that touch a NUL (i.e.
    # span two documents) are dropped. NUL never occurs in cleaned text.
    joined = "\0".join(docs) + "\0"
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    row_of = np.repeat(np.arange(len(docs)), [len(d) + 1 for d in docs])
    # The keys of n-grams lie in [2**(21*(n-1)), 2**(21*n)) (no code point is 0): each n is
    # looked up among its own keys, a smaller array than all of them (the 1-grams are a
    # thirtieth), so each search takes fewer steps over memory closer at hand.
    bounds = np.searchsorted(keys, np.array([0, *(1 << (_BITS * n) for n in range(1, max_n + 1))],
                                            dtype=np.uint64)).tolist()
    rows_all, cols_all = [], []
    for n in range(1, max_n + 1):
        found = pack(codes, n)
        ok = np.ones(len(found), dtype=bool)
        for k in range(n):
            ok &= codes[k : k + len(found)] != 0
        pos = np.flatnonzero(ok)
        lo, hi = bounds[n - 1], bounds[n]
        if lo == hi:
            continue
        sub = keys[lo:hi]
        idx = np.searchsorted(sub, found[pos])
        idx[idx == len(sub)] = 0
        hit = sub[idx] == found[pos]
        rows_all.append(row_of[pos[hit]])
        cols_all.append(idx[hit] + lo)
    if not rows_all:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows_all), np.concatenate(cols_all)
