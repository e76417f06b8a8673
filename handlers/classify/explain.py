"""A short Chinese explanation of a classification, for staff in the console.

It names the words in the message that pushed the model hardest toward the chosen category
(the largest coefficient × TF-IDF products among the word features) and, for categories 1..10,
the measure the message was matched to, quoted briefly from the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import Classifier

_NAMES = {"other": "其他（非整改类别）", "spam": "垃圾信息"}


def top_words(clf: Classifier, row, category: str, n: int = 3) -> list[str]:
    """Words (not word bigrams or character n-grams) in ``row`` that most support ``category``.

    ``row`` is one CSR row as (column indices, values)."""
    feats = clf.features
    # The calibrated model knows the label names; the linear model inside it was fitted on
    # their integer codes, in the same order.
    classes = list(clf.category_model.classes_)
    if category not in classes:
        return []
    cols, vals = row
    keep = cols < feats.n_words
    cols, vals = cols[keep], vals[keep]
    contrib = vals * clf.category_linear.coef_[classes.index(category), cols]
    out: list[str] = []
    for j in np.argsort(-contrib, kind="stable"):
        if contrib[j] <= 0 or len(out) == n:
            break
        word = feats.word_names[cols[j]]
        if len(word) >= 2 and " " not in word and word not in out:  # words, not bigrams
            out.append(word)
    return out


def explain(clf: Classifier, row, category: str, measure: str | None, conf: float) -> str:
    words = top_words(clf, row, category)
    basis = "、".join(f"“{w}”" for w in words) if words else "整体用语"
    if category in _NAMES:
        return f"判为{_NAMES[category]}，依据{basis}；置信度{conf:.0%}。"
    cat = clf.taxonomy.category(category)
    title = cat.title if cat else category
    line = f"判为第{category}类“{title}”，依据{basis}；置信度{conf:.0%}。"
    m = clf.taxonomy.measure(measure) if measure else None
    if m is not None:
        text = m.text if len(m.text) <= 30 else m.text[:29] + "…"
        line += f"\n最接近措施{m.id}：{text}"
    return line
