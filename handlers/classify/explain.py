"""A short Chinese explanation of a classification, for staff in the console.

It names the words in the message that pushed the model hardest toward the chosen category
(the largest coefficient × TF-IDF products among the word features) and, for categories 1..10,
the measure the message was matched to, quoted briefly from the report.

Plain arrays in, so that the Classifier (scikit-learn) and the service's Scorer (numpy only)
explain alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .taxonomy import Taxonomy

_NAMES = {"other": "其他（非整改类别）", "spam": "垃圾信息"}


def top_words(word_names: Sequence[str], coef: np.ndarray | None,
              row: tuple[np.ndarray, np.ndarray], n: int = 3) -> list[str]:
    """Words (not word bigrams or character n-grams) in ``row`` that most support a category.

    ``word_names`` are the word features (the first columns); ``coef`` is the category's row
    of the linear model's coefficients over all features (None: the model has no such
    category); ``row`` is one CSR row as (column indices, values)."""
    if coef is None:
        return []
    cols, vals = row
    keep = cols < len(word_names)
    cols, vals = cols[keep], vals[keep]
    contrib = vals * coef[cols]
    out: list[str] = []
    for j in np.argsort(-contrib, kind="stable"):
        if contrib[j] <= 0 or len(out) == n:
            break
        word = word_names[cols[j]]
        if _shown(word) and word not in out:
            out.append(word)
    return out


def _shown(word: str) -> bool:
    """Whether a word feature may be quoted: a word of two characters or more, no bigram."""
    return len(word) >= 2 and " " not in word


def shown_words(word_names: Sequence[str]) -> np.ndarray:
    """:func:`_shown` of each word feature, for :func:`top_words_many` (computed once)."""
    return np.fromiter(map(_shown, word_names), dtype=bool, count=len(word_names))


def top_words_many(word_names: Sequence[str], shown: np.ndarray, coef: np.ndarray,
                   picks: Sequence[int], indptr: np.ndarray, cols: np.ndarray,
                   vals: np.ndarray, n: int = 3) -> list[list[str]]:
    """:func:`top_words` of every row of a CSR batch at once, row ``i`` for the category
    ``coef[picks[i]]``: the same words in the same order (a word feature occurs once in a
    row, so no word repeats), with numpy over the batch instead of a few small array
    operations a letter. ``shown`` is :func:`shown_words` of ``word_names``."""
    row = np.repeat(np.arange(len(picks)), np.diff(indptr))
    keep = np.flatnonzero(cols < len(word_names))
    keep = keep[shown[cols[keep]]]
    row, col = row[keep], cols[keep]
    contrib = vals[keep] * coef[np.asarray(picks, dtype=np.intp)[row], col]
    pos = contrib > 0
    row, col, contrib = row[pos], col[pos], contrib[pos]
    order = np.lexsort((-contrib, row))  # stable: ties keep the row's column order
    row, col = row[order], col[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)  # place in its row
    first = rank < n
    out: list[list[str]] = [[] for _ in picks]
    for r, c in zip(row[first].tolist(), col[first].tolist(), strict=True):
        out[r].append(word_names[c])
    return out


def explain(
    taxonomy: Taxonomy, words: list[str], category: str, measure: str | None, conf: float
) -> str:
    basis = "、".join(f"“{w}”" for w in words) if words else "整体用语"
    if category in _NAMES:
        return f"判为{_NAMES[category]}，依据{basis}；置信度{conf:.0%}。"
    cat = taxonomy.category(category)
    title = cat.title if cat else category
    line = f"判为第{category}类“{title}”，依据{basis}；置信度{conf:.0%}。"
    m = taxonomy.measure(measure) if measure else None
    if m is not None:
        text = m.text if len(m.text) <= 30 else m.text[:29] + "…"
        line += f"\n最接近措施{m.id}：{text}"
    return line
