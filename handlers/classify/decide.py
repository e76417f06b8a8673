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
from .restrict import cue
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
    report_prob: float = 0.0,
    text: tuple[str, str] = ("", ""),
) -> Classification:
    """One letter's result; ``words`` are the top words for the picked category, ``text``
    the normalised text and its word tokens (read for report cues), ``report_prob`` the kind
    model's "report"."""
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
        report_prob=round(report_prob, 4),
        report_cue=cue(*text),
    )


def report_column(classes: Sequence[object], probs: np.ndarray) -> np.ndarray:
    """Each row's probability of the kind "report" (zeros when the model has no such kind)."""
    labels = [str(c) for c in classes]
    return probs[:, labels.index("report")] if "report" in labels else np.zeros(len(probs))
