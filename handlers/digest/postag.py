"""jieba.posseg's HMM tagging of unknown-word stretches, with its Viterbi pass done by numpy.

The masking (handlers.digest.mask) asks jieba's part-of-speech HMM to tag each stretch of
characters its dictionary does not know where a name may start. jieba runs that HMM in pure
Python (``jieba/posseg/viterbi.py``): for each character, a generator over every pair of a
possible previous state and a possible state, about 200 pairs, 0.2–0.3 ms a character. On
letters as citizens write them (a few hundred characters) it is 85 % of the masking's time,
2–3 ms a letter, so a busy week's XLSX spends seconds in it. Here the same pass is a few array
operations per character over the same tables.

The result is jieba's, not an approximation: the same log-probabilities are added in the same
order (IEEE doubles, as Python adds them), the same states are allowed at each step, and ties
go where jieba's ``max`` over ``(probability, state)`` tuples sends them, to the greater state.
``tests/handlers/digest/test_digest_postag.py`` compares both on the project's corpora and on
random text. jieba offers no hook to replace its Viterbi for one caller, hence this copy of its
``__cut``/``__cut_detail`` (jieba 0.42).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

MIN_FLOAT = -3.14e100  # jieba.posseg.viterbi's stand-ins for a missing emission / transition
MIN_INF = float("-inf")


class _Model:
    """jieba.posseg's HMM tables as arrays, the states sorted as Python sorts their tuples (so
    that the greater state of a tie is the greater index)."""

    def __init__(self, posseg: Any) -> None:
        self.char_states: dict[str, tuple[Any, ...]] = posseg.char_state_tab_P
        self.emit: dict[Any, dict[str, float]] = posseg.emit_P
        states = sorted(posseg.trans_P)
        self.states = states
        self.index = {s: i for i, s in enumerate(states)}
        n = len(states)
        self.start = np.array([posseg.start_P[s] for s in states])
        self.trans = np.full((n, n), MIN_INF)
        self.follows = np.zeros((n, n), dtype=bool)  # follows[x, y]: y is one of x's next states
        for x, nxt in posseg.trans_P.items():
            for y, p in nxt.items():
                self.trans[self.index[x], self.index[y]] = p
                self.follows[self.index[x], self.index[y]] = True
        self.has_next: np.ndarray = np.asarray(self.follows.any(axis=1))
        self.every = np.arange(n)

    def allowed(self, char: str) -> np.ndarray:
        """The states jieba lets ``char`` take (all of them for a character it has no entry for)."""
        known = self.char_states.get(char)
        mask = np.zeros(len(self.states), dtype=bool)
        if known is None:
            mask[:] = True
        else:
            mask[[self.index[s] for s in known]] = True
        return mask

    def emission(self, char: str, states: np.ndarray) -> np.ndarray:
        return np.array([self.emit[self.states[i]].get(char, MIN_FLOAT) for i in states])


@lru_cache(maxsize=1)
def _model() -> _Model:
    import jieba.posseg

    return _Model(jieba.posseg)


def viterbi(obs: str) -> list[Any]:
    """jieba.posseg.viterbi(obs, ...)'s route: the state of each character."""
    m = _model()
    first = m.char_states.get(obs[0])
    defined = (m.every if first is None
               else np.array(sorted(m.index[s] for s in first), dtype=np.intp))
    v = m.start[defined] + m.emission(obs[0], defined)
    back: list[tuple[np.ndarray, np.ndarray]] = []  # per step: its states, their best previous
    for char in obs[1:]:
        keep = m.has_next[defined]
        prev, pv = defined[keep], v[keep]
        expected = m.follows[prev].any(axis=0)
        now = np.flatnonzero(m.allowed(char) & expected)
        if not now.size:
            now = np.flatnonzero(expected) if expected.any() else m.every
        if not prev.size:
            raise ValueError("max() arg is an empty sequence")  # as jieba's own pass fails
        scores = (pv[:, None] + m.trans[np.ix_(prev, now)]) + m.emission(char, now)[None, :]
        # The greatest score, and of equal ones the greatest state: argmax over the rows
        # reversed finds the last maximum (prev is in ascending state order).
        best = len(prev) - 1 - np.argmax(scores[::-1], axis=0)
        back.append((now, prev[best]))
        defined, v = now, scores[best, np.arange(now.size)]
    state = int(defined[len(defined) - 1 - np.argmax(v[::-1])])
    route = [0] * len(obs)
    for i in range(len(obs) - 1, 0, -1):
        route[i] = state
        now, came = back[i - 1]
        state = int(came[np.searchsorted(now, state)])
    route[0] = state
    return [m.states[i] for i in route]


def _cut(sentence: str) -> list[tuple[str, str]]:
    """jieba.posseg.POSTokenizer.__cut: the route read as words and their tags."""
    route = viterbi(sentence)
    out: list[tuple[str, str]] = []
    begin = nexti = 0
    for i, char in enumerate(sentence):
        pos, tag = route[i]
        if pos == "B":
            begin = i
        elif pos == "E":
            out.append((sentence[begin:i + 1], tag))
            nexti = i + 1
        elif pos == "S":
            out.append((char, tag))
            nexti = i + 1
    if nexti < len(sentence):
        out.append((sentence[nexti:], route[nexti][1]))
    return out


def cut_detail(sentence: str) -> list[tuple[str, str]]:
    """jieba.posseg.POSTokenizer.__cut_detail: (word, tag) pairs of one stretch."""
    import jieba.posseg as posseg

    out: list[tuple[str, str]] = []
    for blk in posseg.re_han_detail.split(sentence):
        if posseg.re_han_detail.match(blk):
            out.extend(_cut(blk))
            continue
        for x in posseg.re_skip_detail.split(blk):
            if x:
                tag = ("m" if posseg.re_num.match(x) else
                       "eng" if posseg.re_eng.match(x) else "x")
                out.append((x, tag))
    return out
