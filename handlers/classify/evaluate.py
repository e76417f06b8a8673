"""Scoring a classifier on labelled data (``feedback-bot classify-eval``).

Labelled data has the shape of feedback_dev.jsonl. A prediction counts as correct when it
equals ``category`` or is listed in ``also`` (the reviewer-accepted alternatives); macro-F1 and
the per-class table use the same lenient truth. ``cross_validate`` scores with K folds so that
no item is scored by a model trained on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, f1_score
from sklearn.model_selection import KFold

from .model import Classification, Classifier, train
from .restrict import DEFAULT_THRESHOLD
from .scorer import Scorer
from .taxonomy import Taxonomy

DEFAULT_REVIEW = 0.55  # the default of ``[classifier] review_threshold``


@dataclass
class Scores:
    n: int
    top1: float
    top3: float
    macro_f1: float
    spam_precision: float
    spam_recall: float
    kind: float
    measure: float
    measure_n: int
    per_class: str
    restricted_recall: float = 0.0  # share of the 举报 (kind report) the decision restricts
    restricted_others: float = 0.0  # share of the other letters it restricts too
    reports_n: int = 0
    urgent_precision: float = 1.0  # of the letters flagged urgent, share labelled urgent
    urgent_recall: float = 1.0  # of the letters labelled urgent, share flagged
    urgent_n: int = 0  # letters labelled urgent (a letter with no "urgent" key is not)
    urgent_flagged: int = 0
    review: float = 0.0  # share flagged for review (confidence below the review threshold)
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)

    def summary(self) -> dict:
        keys = (
            "n",
            "top1",
            "top3",
            "macro_f1",
            "spam_precision",
            "spam_recall",
            "kind",
            "measure",
            "measure_n",
            "restricted_recall",
            "restricted_others",
            "reports_n",
            "urgent_precision",
            "urgent_recall",
            "urgent_n",
            "urgent_flagged",
            "review",
        )
        return {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in ((k, getattr(self, k)) for k in keys)
        }

    def render(self) -> str:
        s = self
        lines = [
            f"条数 {s.n}",
            f"top-1 准确率   {s.top1:.1%}   （预测为 category 或 also 之一即算对）",
            f"top-3 准确率   {s.top3:.1%}",
            f"macro-F1       {s.macro_f1:.3f}",
            f"垃圾信息 精确率 {s.spam_precision:.1%}  召回率 {s.spam_recall:.1%}",
            f"kind 准确率    {s.kind:.1%}",
            f"measure 准确率 {s.measure:.1%}  （{s.measure_n} 条标注了措施）",
            f"举报保密       举报中被设为保密 {s.restricted_recall:.1%}（{s.reports_n} 条举报），"
            f"其他来信被设为保密 {s.restricted_others:.1%}",
            f"紧急来信     精确率 {s.urgent_precision:.1%}  召回率 {s.urgent_recall:.1%}"
            f"（标注紧急 {s.urgent_n} 条，判为紧急 {s.urgent_flagged} 条）",
            f"待复核比例   {s.review:.1%}",
            "",
            "各类精确率/召回率：",
            s.per_class,
            "混淆矩阵（行=标注，列=预测）：",
            "       " + "".join(f"{lab:>6}" for lab in s.labels),
        ]
        for lab, row in zip(s.labels, s.confusion, strict=True):
            lines.append(f"{lab:>6} " + "".join(f"{v:>6}" for v in row))
        return "\n".join(lines)


def _rate(hits: list[bool]) -> float:
    return float(np.mean(hits)) if hits else 0.0


def score(items: list[dict], preds: list[Classification], labels: list[str], *,
          restrict_threshold: float = DEFAULT_THRESHOLD,
          review_threshold: float = DEFAULT_REVIEW) -> Scores:
    """Compare predictions with labels (same order); the restriction is the service's decision
    (``restrict.decide``) at ``restrict_threshold``, judged against kind == report; urgency
    against ``urgent`` (absent: not urgent); review at ``review_threshold``."""
    pred = [p.category for p in preds]
    truth = [
        p if p in it.get("also", []) else it["category"] for it, p in zip(items, pred, strict=True)
    ]
    accepted = [{it["category"], *it.get("also", [])} for it in items]
    spam_pred = [p == "spam" for p in pred]
    spam_true = [it["category"] == "spam" for it in items]
    tp = sum(a and b for a, b in zip(spam_pred, spam_true, strict=True))
    measured = [(it, p) for it, p in zip(items, preds, strict=True) if it.get("measure")]
    # Every taxonomy label, so the matrix has a fixed shape; labels from elsewhere go last.
    present = labels + sorted((set(truth) | set(pred)) - set(labels))
    shut = [p.restriction(restrict_threshold).restricted for p in preds]
    is_report = [it.get("kind") == "report" for it in items]
    u_pred = [p.urgent for p in preds]
    u_true = [bool(it.get("urgent", False)) for it in items]
    u_tp = sum(a and b for a, b in zip(u_pred, u_true, strict=True))
    return Scores(
        n=len(items),
        top1=_rate([p in acc for p, acc in zip(pred, accepted, strict=True)]),
        top3=_rate(
            [bool(acc & {c for c, _ in p.top}) for p, acc in zip(preds, accepted, strict=True)]
        ),
        macro_f1=float(f1_score(truth, pred, labels=present, average="macro", zero_division=0)),
        spam_precision=tp / sum(spam_pred) if sum(spam_pred) else 1.0,
        spam_recall=tp / sum(spam_true) if sum(spam_true) else 1.0,
        kind=_rate([p.kind == it.get("kind") for it, p in zip(items, preds, strict=True)]),
        measure=_rate([p.measure == it["measure"] for it, p in measured]),
        measure_n=len(measured),
        per_class=classification_report(truth, pred, labels=present, zero_division=0, digits=3),
        labels=present,
        confusion=confusion_matrix(truth, pred, labels=present).tolist(),
        restricted_recall=_rate([s for s, r in zip(shut, is_report, strict=True) if r]),
        restricted_others=_rate([s for s, r in zip(shut, is_report, strict=True) if not r]),
        reports_n=sum(is_report),
        urgent_precision=u_tp / sum(u_pred) if sum(u_pred) else 1.0,
        urgent_recall=u_tp / sum(u_true) if sum(u_true) else 1.0,
        urgent_n=sum(u_true),
        urgent_flagged=sum(u_pred),
        review=_rate([p.needs_review(review_threshold) for p in preds]),
    )


def predict(clf: Classifier | Scorer, items: list[dict]) -> list[Classification]:
    return clf.classify_many([(it.get("subject") or "", it.get("body") or "") for it in items])


def _key(ex: dict) -> tuple[str, str]:
    return (ex.get("subject") or "", ex.get("body") or "")


def cross_validate(
    items: list[dict],
    base: list[dict],
    taxonomy: Taxonomy,
    k: int,
    *,
    on_fold: Callable[[int], None] | None = None,
) -> list[Classification]:
    """K-fold predictions for ``items``; each fold's model sees ``base`` + the other folds.

    Items that also appear in ``base`` (same subject and body) are dropped from it, so the
    shipped training set can be passed as ``base`` without leaking the scored items.
    """
    scored = {_key(it) for it in items}
    base = [ex for ex in base if _key(ex) not in scored]
    out: list[Classification | None] = [None] * len(items)
    for fold, (tr, te) in enumerate(KFold(k, shuffle=True, random_state=0).split(items)):
        clf = train(base + [items[i] for i in tr], taxonomy)
        for i, p in zip(te, predict(clf, [items[i] for i in te]), strict=True):
            out[i] = p
        if on_fold:
            on_fold(fold)
    return [p for p in out if p is not None]
