"""From the models' scores to a ``Classification``.

Shared by the Classifier (scikit-learn, training and evaluation) and the Scorer (numpy only,
the running service), so the rules that turn probabilities into a label cannot drift apart
between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .explain import explain
from .result import Classification

if TYPE_CHECKING:
    from .taxonomy import Taxonomy

Pick = tuple[str, float, list[tuple[str, float]]]  # category, confidence, top 3


def pick_category(labels: Sequence[str], probs: np.ndarray, spam_bar: float) -> Pick:
    """The category, its probability and the 3 best; spam only when at least ``spam_bar``
    sure, otherwise the next label."""
    order = np.argsort(-probs, kind="stable")
    ranked = [(str(labels[j]), float(probs[j])) for j in order]
    best, conf = ranked[0]
    if best == "spam" and conf < spam_bar and len(ranked) > 1:
        best, conf = ranked[1]
        ranked = [ranked[1], ranked[0], *ranked[2:]]
    return best, conf, [(c, round(s, 4)) for c, s in ranked[:3]]


def classification(
    pick: Pick,
    kind: str,
    measure: str | None,
    words: list[str],
    *,
    taxonomy: Taxonomy,
    version: str,
) -> Classification:
    """One letter's result; ``words`` are the top words for the picked category."""
    category, conf, top = pick
    spam = category == "spam"
    return Classification(
        category=category,
        measure=None if spam else measure,
        kind="spam" if spam else kind,
        confidence=round(conf, 4),
        top=top,
        explanation=explain(taxonomy, words, category, measure, conf),
        model_version=version,
        taxonomy_version=taxonomy.version,
    )
