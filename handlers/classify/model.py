"""The feedback classifier: features, training and prediction.

This is the model behind the ``classify`` pipeline step. One feature space (TF-IDF over jieba
words and word bigrams plus TF-IDF over character 1–3-grams, which tolerates typos and unknown
words) feeds scikit-learn logistic regressions: one for the category (1..10, other, spam),
one for the kind, and one per category for its measures. Training data is the taxonomy itself
(each category title and measure text is a pseudo-document, so a new report works with no
labelled data) plus any labelled examples (the project's corpus, the development set, staff
corrections), which dominate once present. The category probabilities are calibrated by
temperature scaling and serve as the confidence. Spam gets a higher bar than the other
labels: an unsure spam call falls back to the next label.

This is the model for training and evaluation. The running service predicts with the
``Scorer`` exported from it (``scorer.py``), which gives the same results with numpy alone.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from .decide import classification, decide_many
from .explain import top_words
from .features import Featuriser
from .result import Classification
from .seeds import KIND_SEEDS, OTHER_SEEDS, SPAM_SEEDS
from .taxonomy import Taxonomy
from .text import Normaliser, normaliser_for
from .version import data_version

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

SPAM_BAR = 0.8  # spam only when at least this sure; otherwise the next label
TAXONOMY_WEIGHT = 2.0  # weight of a title/measure pseudo-document relative to a message
SEED_WEIGHT = 0.5  # weight of the built-in other/spam/kind cue lists
NO_MEASURE = "-"  # measure-model class for "filed under the category, no single measure"
MIN_NO_MEASURE = 5  # labelled examples needed before "no measure" becomes a class
MEASURE_C = 10.0  # measure models: fewer examples per class, so more regularisation
C = 100.0  # inverse regularisation strength of the category and kind regressions
CALIBRATION_FOLDS = 3
CALIBRATION = "temperature"  # multi-class temperature scaling keeps the ranking
SOLVER = "newton-cg"  # deterministic like lbfgs, and 3x faster on these wide sparse problems
KINDS = ("complaint", "suggestion", "report", "inquiry", "praise", "spam")
URGENT_C = 10.0  # the urgency model: few positive examples, so more regularisation
URGENT, CALM = "urgent", "calm"  # its two classes


@dataclass
class _Doc:
    clean: str
    words: str
    category: str | None
    measure: str | None
    kind: str | None
    weight: float
    labelled: bool = False
    urgent: bool | None = None  # labelled letters only: unmarked ones are not urgent


def _taxonomy_docs(tax: Taxonomy, norm: Normaliser) -> list[_Doc]:
    docs = []
    for cat in tax.categories:
        clean, words = norm("", cat.title)
        docs.append(_Doc(clean, words, cat.id, None, None, TAXONOMY_WEIGHT))
        for m in cat.measures:
            clean, words = norm(cat.title, m.text)
            docs.append(_Doc(clean, words, cat.id, m.id, None, TAXONOMY_WEIGHT))
    for label, seeds in (("other", OTHER_SEEDS), ("spam", SPAM_SEEDS)):
        for seed in seeds:
            clean, words = norm("", seed)
            docs.append(_Doc(clean, words, label, None, None, SEED_WEIGHT))
    for kind, seeds in KIND_SEEDS.items():
        for seed in seeds:
            clean, words = norm("", seed)
            docs.append(_Doc(clean, words, None, None, kind, SEED_WEIGHT))
    return docs


def _example_docs(examples: Iterable[dict], tax: Taxonomy, norm: Normaliser,
                  progress: bool) -> list[_Doc]:
    labels = set(tax.labels)
    docs = []
    for ex in tqdm(list(examples), desc="准备训练数据", unit="条", disable=not progress):
        cat = ex.get("category")
        kind = ex.get("kind") if ex.get("kind") in KINDS else None
        if cat not in labels:
            # A label from another taxonomy (store.examples_for blanks those): its category
            # would mislead, its kind still teaches.
            if kind is None:
                continue
            cat = None
        measure = ex.get("measure") if cat is not None else None
        if measure is not None and tax.measure(measure) is None:
            measure = None
        clean, words = norm(ex.get("subject") or "", ex.get("body") or "")
        weight = float(ex.get("weight", 1.0))
        docs.append(_Doc(clean, words, cat, measure, kind, weight, labelled=True,
                         urgent=bool(ex.get("urgent", False))))
    return docs


def _fit_lr(x: csr_matrix, y: list[str], w: list[float], c: float) -> LogisticRegression:
    # lbfgs is deterministic, so the same data gives the same model bit for bit.
    lr = LogisticRegression(C=c, solver=SOLVER, max_iter=3000, class_weight="balanced")
    with warnings.catch_warnings():
        # With the taxonomy alone each measure has one document; sklearn warns that this
        # "could be a regression problem". It is not.
        warnings.filterwarnings("ignore", message="The number of unique classes")
        lr.fit(x, np.array(y), sample_weight=np.array(w))
    return lr


def _fit_calibrated(x: csr_matrix, y: list[str], w: list[float],
                    c: float) -> LogisticRegression | CalibratedClassifierCV:
    """Category model whose probabilities are calibrated by temperature scaling.

    A strongly-regularised logistic regression on a few hundred texts is under-confident
    (right 98 % of the time at a stated 40 %); one temperature fitted on cross-validated
    scores fixes the scale without changing the ranking. Falls back to the plain model when
    some class has too few examples for stratified folds (taxonomy-only training)."""
    folds = min(CALIBRATION_FOLDS, min(Counter(y).values()))
    if folds < CALIBRATION_FOLDS:  # too few per class for a temperature worth trusting
        return _fit_lr(x, y, w, c)
    base = LogisticRegression(C=c, solver=SOLVER, max_iter=3000, class_weight="balanced")
    cal = CalibratedClassifierCV(
        base,
        method=CALIBRATION,
        cv=StratifiedKFold(folds, shuffle=True, random_state=0),
        ensemble=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The number of unique classes")
        cal.fit(x, np.array(y), sample_weight=np.array(w))
    return cal


def _linear(model: LogisticRegression | CalibratedClassifierCV) -> LogisticRegression:
    """The logistic regression inside a possibly calibrated model (for explanations)."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


def _select(docs: list[_Doc], attr: str) -> tuple[list[int], list[str], list[float]]:
    idx = [i for i, d in enumerate(docs) if getattr(d, attr) is not None]
    return idx, [getattr(docs[i], attr) for i in idx], [docs[i].weight for i in idx]


class Classifier:
    """A trained model; thread-safe for prediction (read-only after training)."""

    version: str
    examples: list[dict]  # set by train(); saved beside the model, not in its pickle
    # scikit-learn's English stop words, sorted (a frozenset would pickle in hash-seed order).
    # A class attribute, so models pickled before it existed have it too; the Scorer copies
    # it into its file.
    stop_words: tuple[str, ...] = tuple(sorted(ENGLISH_STOP_WORDS))

    def __init__(self, taxonomy: Taxonomy, version: str, *, c: float | None = None) -> None:
        self.taxonomy = taxonomy
        self.version = version
        self.c = C if c is None else c
        self.sklearn_version = sklearn.__version__
        self.spam_bar = SPAM_BAR

    @property
    def norm(self) -> Normaliser:
        return normaliser_for(self.taxonomy.terms, self.stop_words)

    def fit(self, examples: list[dict], *, progress: bool = False) -> Classifier:
        norm = self.norm
        labelled = _example_docs(examples, self.taxonomy, norm, progress)
        docs = _taxonomy_docs(self.taxonomy, norm) + labelled
        steps = tqdm(total=4, desc="训练模型", disable=not progress)
        self.features = Featuriser(len(labelled)).fit(
            [d.clean for d in docs], [d.words for d in docs]
        )
        x = self.features.transform([d.clean for d in docs], [d.words for d in docs])
        steps.update()
        idx, y, w = _select(docs, "category")
        self.category_model = _fit_calibrated(x[idx], y, w, self.c)
        self.category_linear = _linear(self.category_model)
        steps.update()
        idx, y, w = _select(docs, "kind")
        self.kind_model = _fit_lr(x[idx], y, w, self.c)
        steps.update()
        self.measure_models = self._fit_measures(docs, x)
        self.urgent_model = self._fit_urgent(docs, x)
        steps.update()
        steps.close()
        return self

    def _fit_measures(self, docs: list[_Doc],
                      x: csr_matrix) -> dict[str, LogisticRegression | str]:
        """One measure model per category, used only after the category is chosen.

        Per-category models are small (2–13 classes) and train ~20x faster than one model
        over all 67 measures. A category with a single measure (9) maps to it directly.
        Where reviewers often file messages under a category with no measure (corruption
        reports in 7), "no measure" is a class of its own."""
        models: dict[str, LogisticRegression | str] = {}
        for cat in self.taxonomy.categories:
            mine = [i for i, d in enumerate(docs) if d.category == cat.id]
            none = [i for i in mine if docs[i].labelled and docs[i].measure is None]
            idx = [i for i in mine if docs[i].measure] + (
                none if len(none) >= MIN_NO_MEASURE else []
            )
            y = [docs[i].measure or NO_MEASURE for i in idx]
            if len(set(y)) == 1:
                models[cat.id] = y[0]
            elif y:
                models[cat.id] = _fit_lr(x[idx], y, [docs[i].weight for i in idx], MEASURE_C)
        return models

    def _fit_urgent(self, docs: list[_Doc], x: csr_matrix) -> LogisticRegression | None:
        """The urgency model (``urgent.py``): every labelled letter, urgent or calm; None
        without urgent examples (the cues then decide alone, see ``urgent_probs``)."""
        idx = [i for i, d in enumerate(docs) if d.urgent is not None]
        y = [URGENT if docs[i].urgent else CALM for i in idx]
        if URGENT not in y or CALM not in y:
            return None
        return _fit_lr(x[idx], y, [docs[i].weight for i in idx], URGENT_C)

    def urgent_probs(self, x: csr_matrix) -> np.ndarray | None:
        model = getattr(self, "urgent_model", None)
        if model is None:
            return None
        return model.predict_proba(x)[:, list(model.classes_).index(URGENT)]

    def _measures(self, x: csr_matrix, categories: list[str]) -> list[str | None]:
        out: list[str | None] = [None] * len(categories)
        for cat in set(categories):
            model = self.measure_models.get(cat)
            if model is None:
                continue
            rows = [i for i, c in enumerate(categories) if c == cat]
            preds = [model] * len(rows) if isinstance(model, str) else model.predict(x[rows])
            for i, m in zip(rows, preds, strict=True):
                out[i] = None if m == NO_MEASURE else str(m)
        return out

    def __getstate__(self) -> dict:
        # Training examples are saved beside the model as JSON lines, not inside the pickle.
        return {k: v for k, v in self.__dict__.items() if k != "examples"}

    def classify(self, subject: str, body: str) -> Classification:
        return self.classify_many([(subject, body)])[0]

    def classify_many(self, items: list[tuple[str, str]]) -> list[Classification]:
        if not items:
            return []
        chars, words_in = self.norm.many(items)
        x = self.features.transform(chars, words_in)
        labels = [str(c) for c in self.category_model.classes_]
        probs = self.category_model.predict_proba(x)
        decisions = decide_many(labels, probs, self.kind_model.classes_,
                                self.kind_model.predict_proba(x), self.urgent_probs(x),
                                self.spam_bar, (chars, words_in), items)
        measures = self._measures(x, [d.pick[0] for d in decisions])
        coef = {c: self.category_linear.coef_[j] for j, c in enumerate(labels)}
        out = []
        for i, decision in enumerate(decisions):
            # A CSR row as (columns, values): slicing the matrix per row costs more than
            # the whole prediction.
            row = (x.indices[x.indptr[i] : x.indptr[i + 1]], x.data[x.indptr[i] : x.indptr[i + 1]])
            words = top_words(self.features.word_names, coef.get(decision.pick[0]), row)
            out.append(classification(decision, measures[i], words, taxonomy=self.taxonomy,
                                      version=self.version))
        return out


def train(examples: Iterable[dict], taxonomy: Taxonomy, *, progress: bool = False) -> Classifier:
    """Train a classifier from the taxonomy plus labelled examples (may be empty)."""
    examples = list(examples)
    clf = Classifier(taxonomy, data_version(examples, taxonomy))
    clf.examples = examples  # kept so a model can be rebuilt under a new scikit-learn
    return clf.fit(examples, progress=progress)
