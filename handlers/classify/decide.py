"""From the models' scores to a ``Classification``.

Shared by the Classifier (scikit-learn, training and evaluation) and the Scorer (numpy only,
the running service), so the rules that turn probabilities into a label cannot drift apart
between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import urgent as urgency
from .explain import explain
from .restrict import DEFAULT_THRESHOLD, cue
from .result import Classification

if TYPE_CHECKING:
    from .taxonomy import Taxonomy

Pick = tuple[str, float, list[tuple[str, float]]]  # category, confidence, top 3


CUED_SPAM_BAR = 0.95  # spam despite a misconduct-report cue only when this sure


def _mostly_latin(subject: str | None, body: str | None) -> bool:
    """Whether a letter is written mostly in Latin letters (English, pinyin). The model learned
    from Chinese letters and a few dozen English ones, so it is less sure than its probability
    says there: a foreign resident's "Help! ... Who is in charge?" scored as spam in
    cross-validation. Such a letter is spam only at :data:`CUED_SPAM_BAR`."""
    text = f"{subject or ''}{body or ''}"
    latin = sum(c.isascii() and c.isalpha() for c in text)
    return latin > 2 * sum("\u4e00" <= c <= "\u9fff" for c in text)


def pick_category(labels: Sequence[str], probs: np.ndarray, spam_bar: float,
                  order: Sequence[int] | None = None) -> Pick:
    """The category, its probability and the 3 best; spam only when at least ``spam_bar``
    sure, otherwise the next label. ``order``: the labels' indices by falling probability
    (stable), when the caller sorted a whole batch at once."""
    if order is None:
        order = np.argsort(-probs, kind="stable").tolist()
    p = probs.tolist()
    ranked = [(str(labels[j]), p[j]) for j in order]
    best, conf = ranked[0]
    if best == "spam" and conf < spam_bar and len(ranked) > 1:
        best, conf = ranked[1]
        ranked = [ranked[1], ranked[0], *ranked[2:]]
    return best, conf, [(c, round(s, 4)) for c, s in ranked[:3]]


@dataclass(frozen=True)
class Decision:
    """What the rules make of one letter's model scores, before its measure is chosen."""

    pick: Pick
    kind: str
    report_prob: float
    report_cue: str | None
    urgency: urgency.Urgency


def decide_many(
    labels: Sequence[str],
    probs: np.ndarray,
    kind_labels: Sequence[str],
    kind_probs: np.ndarray,
    urgent_probs: np.ndarray | None,
    spam_bar: float,
    text: tuple[Sequence[str], Sequence[str]],
    items: Sequence[tuple[str, str]],
) -> list[Decision]:
    """The labels of a batch from its category, kind and urgency probabilities, its
    normalised text (character text, word tokens) and the letters as written (subject, body;
    read for English urgency cues, which the normalised text has lost).

    When unsure, not spam: beyond ``spam_bar``, a letter whose likeliest kind is report, whose
    report probability reaches the default restrict threshold, or that is urgent is never spam, and
    one with a misconduct-report cue (a broad net: "送888元" in a casino advert is one) is spam
    only at :data:`CUED_SPAM_BAR`, as is a letter mostly in Latin letters. A spam letter carries
    no report cue and no urgency, so a restricted or urgent letter is never spam. The kind model knows spam too (so that a spam
    letter's report probability is low), but a letter's kind is the best citizens' kind."""
    kinds = [str(k) for k in kind_labels]
    citizen = np.array([k != "spam" for k in kinds])
    report = kinds.index("report") if "report" in kinds else None
    n = len(items)
    # Row by row, what each letter's loop did with its own row (numpy once, not n times).
    kind_of = np.argmax(np.where(citizen, kind_probs, -1.0), axis=1).tolist()
    top_kind = np.argmax(kind_probs, axis=1).tolist()
    report_probs = kind_probs[:, report].tolist() if report is not None else [0.0] * n
    u_probs = urgent_probs.tolist() if urgent_probs is not None else [None] * n
    orders = np.argsort(-probs, axis=1, kind="stable").tolist()
    labels = [str(c) for c in labels]
    out = []
    for i, (chars, words, (subject, body)) in enumerate(zip(*text, items, strict=True)):
        kind = kinds[kind_of[i]]
        report_prob = report_probs[i]
        report_cue = cue(chars, words)
        urgent = urgency.assess(u_probs[i], chars, f"{subject or ''}\n{body or ''}",
                                words=words)
        bar = spam_bar if report_cue is None else max(spam_bar, CUED_SPAM_BAR)
        likely_report = kinds[top_kind[i]] == "report" or report_prob >= DEFAULT_THRESHOLD
        if urgent.urgent or likely_report:
            bar = np.inf
        pick = pick_category(labels, probs[i], bar, orders[i])
        if pick[0] == "spam" and bar < CUED_SPAM_BAR and _mostly_latin(subject, body):
            pick = pick_category(labels, probs[i], CUED_SPAM_BAR, orders[i])  # only for spam
        if pick[0] == "spam":
            report_cue, urgent = None, urgency.CALM
        out.append(Decision(pick, kind, report_prob, report_cue, urgent))
    return out


def classification(
    decision: Decision,
    measure: str | None,
    words: list[str],
    *,
    taxonomy: Taxonomy,
    version: str,
) -> Classification:
    """One letter's result; ``words`` are the top words for the picked category."""
    category, conf, top = decision.pick
    spam = category == "spam"
    u = decision.urgency
    return Classification(
        category=category,
        measure=None if spam else measure,
        kind="spam" if spam else decision.kind,
        confidence=round(conf, 4),
        top=top,
        explanation=explain(taxonomy, words, category, measure, conf),
        model_version=version,
        taxonomy_version=taxonomy.version,
        report_prob=round(decision.report_prob, 4),
        report_cue=decision.report_cue,
        urgent=u.urgent,
        urgent_score=u.score,
        urgent_cues=u.cues,
    )
