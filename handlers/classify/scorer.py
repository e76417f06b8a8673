"""The classifier as the running service uses it: prediction with numpy alone.

Hand-written, for memory. Performance issue #8 requires ``serve`` with its children to stay
under 300 MB RSS after an ingest run, and the intake's prepare process, which classifies
letters, was ~248 MB. Import costs measured in a fresh interpreter: numpy +15 MB,
scipy.sparse +22 MB, ``sklearn.feature_extraction.text`` +65 MB (it pulls scipy.stats,
optimize, interpolate, ...), sklearn.linear_model +8 MB. Yet prediction is only a TF-IDF
transform and a few linear models, i.e. dot products. So scikit-learn stays for training and
evaluation (``model.Classifier``), and ``Scorer.from_classifier`` exports what a fitted
Classifier predicts with into plain arrays; this module imports neither scipy nor
scikit-learn.

The arithmetic is scikit-learn's, operation for operation: counts → 1 + log → × idf → each
row divided by its l2 norm (its sum of squares taken in column order, as
``normalize`` does), word block and character block each on its own; a decision is a row's
products summed in column order (as scipy's sparse product does) plus the intercept;
probabilities are scikit-learn's softmax, temperature scaling included. The results are the
Classifier's (the tests compare the two on the development set and on edge inputs).

Saved as one ``.npz``: the numbers as arrays, the strings (labels, word vocabulary, taxonomy)
as one JSON document stored as bytes; loaded with ``allow_pickle=False``, so a model file
cannot run code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .decide import classification, decide_many
from .explain import shown_words, top_words_many
from .ngrams import ngram_hits
from .result import Classification
from .taxonomy import Taxonomy
from .text import Normaliser, normaliser_for

if TYPE_CHECKING:
    from numpy.lib.npyio import NpzFile
    from sklearn.linear_model import LogisticRegression

    from .features import Featuriser
    from .model import Classifier

FORMAT = 2  # of the file; bump when its arrays or their meaning change (2: urgency model)


@dataclass(frozen=True)
class _Rows:
    """A batch's TF-IDF features as CSR entries: row-major, columns ascending in a row."""

    row: np.ndarray
    col: np.ndarray
    val: np.ndarray
    n: int

    def take(self, rows: np.ndarray) -> _Rows:
        """The given rows (ascending), renumbered from 0, like ``csr[rows]``."""
        where = np.full(self.n, -1)
        where[rows] = np.arange(len(rows))
        new = where[self.row]
        keep = new >= 0
        return _Rows(new[keep], self.col[keep], self.val[keep], len(rows))

    def indptr(self) -> np.ndarray:
        return np.searchsorted(self.row, np.arange(self.n + 1))


@dataclass(frozen=True)
class _Linear:
    """A fitted ``LogisticRegression``: coefficients (one row per class, or one row for two
    classes) over ``cols``, or over all features when ``cols`` is None."""

    classes: list[Any]  # labels; None for a measure model's "no measure" class
    coef: np.ndarray
    intercept: np.ndarray
    cols: np.ndarray | None = None

    @classmethod
    def from_lr(cls, lr: Any, classes: Sequence[Any], *, sparse: bool = False) -> _Linear:
        """``sparse``: keep only the columns with a non-zero coefficient. A measure model is
        fitted on one category's texts, so most features have none (~1/3 are kept); the
        others add exactly 0 to a sum, so dropping them changes no result."""
        coef = np.ascontiguousarray(lr.coef_, dtype=np.float64)
        cols = np.flatnonzero((coef != 0).any(axis=0)) if sparse else None
        if cols is not None:
            coef = np.ascontiguousarray(coef[:, cols])
        return cls(list(classes), coef, np.asarray(lr.intercept_, dtype=np.float64), cols)

    def decision(self, x: _Rows) -> np.ndarray:
        """``LogisticRegression.decision_function``: (n, classes), or (n,) for two classes."""
        row, col, val = x.row, x.col, x.val
        if self.cols is not None:
            j = np.searchsorted(self.cols, col)
            j[j == len(self.cols)] = 0
            hit = self.cols[j] == col if len(self.cols) else np.zeros(len(col), dtype=bool)
            row, col, val = row[hit], j[hit], val[hit]
        out = np.empty((x.n, len(self.coef)))
        for k, w in enumerate(self.coef):
            # bincount adds in entry order: a row's products in column order, from 0.0.
            out[:, k] = np.bincount(row, weights=val * w[col], minlength=x.n)
        out += self.intercept
        return out.reshape(-1) if out.shape[1] == 1 else out

    def predict(self, x: _Rows) -> list[Any]:
        d = self.decision(x)
        idx = (d > 0).astype(np.intp) if d.ndim == 1 else np.argmax(d, axis=1)
        return [self.classes[i] for i in idx]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}coef": self.coef, f"{prefix}intercept": self.intercept}
        if self.cols is not None:
            out[f"{prefix}cols"] = self.cols
        return out

    @classmethod
    def from_arrays(cls, z: NpzFile, prefix: str, classes: list[Any]) -> _Linear:
        cols = z[f"{prefix}cols"] if f"{prefix}cols" in z.files else None
        return cls(classes, z[f"{prefix}coef"], z[f"{prefix}intercept"], cols)


def _lr_proba(d: np.ndarray) -> np.ndarray:
    """``LogisticRegression.predict_proba`` from its decision values."""
    if d.ndim == 1:  # two classes: scipy's expit, written out (equal to ~1 ulp)
        p = 1.0 / (1.0 + np.exp(-d))
        return np.stack([1 - p, p], axis=1)
    return _softmax(d)


def _softmax(x: np.ndarray) -> np.ndarray:
    """scikit-learn's ``utils.extmath.softmax``: in place, the same operations in order."""
    x -= x.max(axis=1).reshape(-1, 1)
    np.exp(x, out=x)
    x /= x.sum(axis=1).reshape(-1, 1)
    return x


def _temperature(d: np.ndarray, beta: float) -> np.ndarray:
    """``CalibratedClassifierCV(method="temperature")``'s probabilities from the decision
    values (scikit-learn 1.9 ``_TemperatureScaling.predict`` and the clipping after it)."""
    if d.ndim == 2 and d.shape[1] > 1:
        # scikit-learn takes a batch whose scores all look like probabilities for
        # predict_proba output; a multinomial model's scores sum to ~0, not 1, but the
        # rule is copied so that the two can never disagree.
        if ((d >= 0) & (d <= 1)).all() and np.isclose(d.sum(axis=1), 1.0).all():
            d = np.log(d + 1e-12)
        logits = d
    else:
        d = d.reshape(-1, 1)
        logits = np.concatenate([-d, d], axis=1)
    p = _softmax(beta * logits)
    p[(p > 1.0) & (p <= 1.0 + 1e-5)] = 1.0
    return p


def _tfidf(rows: np.ndarray, cols: np.ndarray, n: int, idf: np.ndarray) -> _Rows:
    """``TfidfTransformer(sublinear_tf=True, norm="l2")`` applied to the counts of the
    (row, column) hits, repeats included."""
    width = len(idf)
    keys, counts = np.unique(rows.astype(np.int64) * width + cols, return_counts=True)
    rows, cols = np.divmod(keys, width)
    vals = counts.astype(np.float64)
    np.log(vals, out=vals)
    vals += 1.0
    vals *= idf[cols]
    # Every value is >= 1, so a row with entries never has a zero norm.
    norms = np.sqrt(np.bincount(rows, weights=vals * vals, minlength=n))
    vals /= norms[rows]
    return _Rows(rows, cols, vals, n)


def _check_featuriser(feats: Featuriser) -> None:
    """The settings this module reproduces; another Featuriser must not export silently."""
    expected = {
        "analyzer": "word", "tokenizer": str.split, "ngram_range": (1, 2), "lowercase": False,
        "preprocessor": None, "strip_accents": None, "stop_words": None, "binary": False,
        "use_idf": True, "sublinear_tf": True, "norm": "l2", "dtype": np.float64,
    }  # fmt: skip
    words = feats.words.get_params()
    chars = feats.char_tfidf.get_params()
    wrong = [k for k, v in expected.items() if words[k] != v]
    wrong += [f"char {k}" for k in ("use_idf", "sublinear_tf", "norm") if chars[k] != expected[k]]
    if wrong:
        raise ValueError(f"the scorer cannot reproduce this featuriser: {', '.join(wrong)}")


def _urgent_linear(lr: LogisticRegression | None) -> _Linear | None:
    """The urgency model with its positive class second, as ``_lr_proba`` orders it."""
    if lr is None:
        return None
    from .model import URGENT

    classes = [str(c) for c in lr.classes_]
    if classes[1] != URGENT:  # scikit-learn sorts classes: "calm" < "urgent" always holds
        raise ValueError(f"unexpected urgency classes {classes}")
    return _Linear.from_lr(lr, classes)


@dataclass(eq=False, repr=False)
class Scorer:
    """Predicts like the ``Classifier`` it was exported from; read-only, so thread-safe."""

    version: str
    taxonomy: Taxonomy
    sklearn_version: str  # of the Classifier it was exported from (for the record)
    stop_words: tuple[str, ...]
    spam_bar: float
    word_names: list[str]
    word_idf: np.ndarray
    char_keys: np.ndarray
    char_idf: np.ndarray
    max_n: int
    category: _Linear
    beta: float | None  # temperature; None for an uncalibrated category model
    kind: _Linear
    measures: dict[str, _Linear | str | None]  # per category; a str/None: always that one
    urgent: _Linear | None = None  # the urgency model (two classes: one row); None: cues only
    _word_index: dict[str, int] = field(init=False)
    _shown: np.ndarray = field(init=False)  # explain.shown_words of word_names
    # Each word bigram as (column of its first word) * len(word_names) + (column of its
    # second), sorted, and the bigram's own column; None when a bigram's word is no feature.
    _bigram_keys: np.ndarray | None = field(init=False)
    _bigram_cols: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._word_index = index = {w: i for i, w in enumerate(self.word_names)}
        self._shown = shown_words(self.word_names)
        self._bigram_keys, self._bigram_cols = None, np.zeros(0, dtype=np.int64)
        keys: list[int] = []
        cols: list[int] = []
        for col, name in enumerate(self.word_names):
            first, space, second = name.partition(" ")
            if space:
                a, b = index.get(first), index.get(second)
                if a is None or b is None or " " in second:
                    return  # the string lookup then
                keys.append(a * len(self.word_names) + b)
                cols.append(col)
        order = np.argsort(np.array(keys, dtype=np.int64))
        self._bigram_keys = np.array(keys, dtype=np.int64)[order]
        self._bigram_cols = np.array(cols, dtype=np.int64)[order]

    def __repr__(self) -> str:
        return f"Scorer({self.version})"

    @classmethod
    def from_classifier(cls, clf: Classifier) -> Scorer:
        from .model import NO_MEASURE  # imports scikit-learn; so does having a Classifier

        feats = clf.features
        _check_featuriser(feats)
        model, beta = clf.category_model, None
        if hasattr(model, "calibrated_classifiers_"):  # CalibratedClassifierCV
            (cal,) = model.calibrated_classifiers_  # ensemble=False: one
            if cal.method != "temperature":
                raise ValueError(f"the scorer cannot reproduce {cal.method} calibration")
            beta = float(cal.calibrators[0].beta_)
        measures: dict[str, _Linear | str | None] = {}
        for cat, m in clf.measure_models.items():
            if isinstance(m, str):
                measures[cat] = None if m == NO_MEASURE else m
            else:
                labels = [None if c == NO_MEASURE else str(c) for c in m.classes_]
                measures[cat] = _Linear.from_lr(m, labels, sparse=True)
        return cls(
            version=clf.version,
            taxonomy=clf.taxonomy,
            sklearn_version=clf.sklearn_version,
            stop_words=tuple(clf.stop_words),
            spam_bar=float(clf.spam_bar),
            word_names=[str(w) for w in feats.word_names],
            word_idf=np.asarray(feats.words.idf_, dtype=np.float64),
            char_keys=np.asarray(feats.char_counts.keys_, dtype=np.uint64),
            char_idf=np.asarray(feats.char_tfidf.idf_, dtype=np.float64),
            max_n=int(feats.char_counts.max_n),
            category=_Linear.from_lr(clf.category_linear, [str(c) for c in model.classes_]),
            beta=beta,
            kind=_Linear.from_lr(clf.kind_model, [str(c) for c in clf.kind_model.classes_]),
            measures=measures,
            urgent=_urgent_linear(getattr(clf, "urgent_model", None)),
        )

    # -- prediction ------------------------------------------------------------------------

    @property
    def norm(self) -> Normaliser:
        return normaliser_for(self.taxonomy.terms, self.stop_words)

    def classify(self, subject: str, body: str) -> Classification:
        return self.classify_many([(subject, body)])[0]

    def classify_many(self, items: list[tuple[str, str]]) -> list[Classification]:
        if not items:
            return []
        split = self.norm.split
        parts = [split(s or "", b or "") for s, b in items]
        chars = [p[0] for p in parts]
        tokens = [p[1] for p in parts]
        words_in = [" ".join(t) for t in tokens]  # what Normaliser.many gives
        x = self._features(chars, tokens)
        labels = self.category.classes
        d = self.category.decision(x)
        probs = _lr_proba(d) if self.beta is None else _temperature(d, self.beta)
        urgent = None if self.urgent is None else _lr_proba(self.urgent.decision(x))[:, 1]
        decisions = decide_many(labels, probs, self.kind.classes,
                                _lr_proba(self.kind.decision(x)), urgent, self.spam_bar,
                                (chars, words_in), items)
        measures = self._measures(x, [dec.pick[0] for dec in decisions])
        words = top_words_many(self.word_names, self._shown, self.category.coef,
                               [labels.index(dec.pick[0]) for dec in decisions], x.indptr(),
                               x.col, x.val)
        return [classification(decision, measure, top, taxonomy=self.taxonomy,
                               version=self.version)
                for decision, measure, top in zip(decisions, measures, words, strict=True)]

    def _features(self, clean: Sequence[str], words: Sequence[list[str]]) -> _Rows:
        """``Featuriser.transform``: word TF-IDF, then character TF-IDF, side by side;
        ``words`` as ``Normaliser.split`` gives them."""
        n = len(clean)
        w = _tfidf(*self._word_hits(words), n, self.word_idf)
        c = _tfidf(*ngram_hits(self.char_keys, clean, self.max_n), n, self.char_idf)
        row = np.concatenate([w.row, c.row])
        order = np.argsort(row, kind="stable")  # in a row: its words, then its characters
        col = np.concatenate([w.col, c.col + len(self.word_names)])
        return _Rows(row[order], col[order], np.concatenate([w.val, c.val])[order], n)

    def _word_hits(self, words: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of each known word and word bigram, as ``TfidfVectorizer(
        tokenizer=str.split, ngram_range=(1, 2))`` analyses the joined words (in another
        order, which ``_tfidf`` does not see: it counts (row, column) pairs).

        One dictionary lookup a token, for the whole batch at once; a bigram is looked up as
        the pair of its words' columns (:attr:`_bigram_keys`), with numpy, instead of as a
        joined string: 70 µs a 300-character letter went to building and looking up those."""
        if self._bigram_keys is None:
            return self._word_hits_by_string([" ".join(t) for t in words])
        # str.split drops the " " tokens and nothing else (Normaliser.split)
        toks = [list(filter(" ".__ne__, t)) for t in words]
        flat = list(chain.from_iterable(toks))
        ids = np.fromiter(map(self._word_index.get, flat, repeat(-1)), dtype=np.int64,
                          count=len(flat))
        rows = np.repeat(np.arange(len(toks)), np.fromiter(map(len, toks), dtype=np.int64,
                                                           count=len(toks)))
        known = ids >= 0
        # A bigram is two neighbouring tokens of one document, both known words: the model's
        # bigrams passed the same document-frequency cut as their words (module docstring of
        # features.py), so a pair with an unknown word is no feature (checked at load).
        pair = known[:-1] & known[1:] & (rows[:-1] == rows[1:])
        at = np.flatnonzero(pair)
        keys = ids[at] * len(self.word_names) + ids[at + 1]
        j = np.searchsorted(self._bigram_keys, keys)
        j[j == len(self._bigram_keys)] = 0
        hit = self._bigram_keys[j] == keys if len(self._bigram_keys) else np.zeros(0, bool)
        return (np.concatenate([rows[known], rows[at[hit]]]),
                np.concatenate([ids[known], self._bigram_cols[j[hit]]]))

    def _word_hits_by_string(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_word_hits` for a vocabulary with a bigram whose words are not features."""
        index = self._word_index.get
        rows: list[int] = []
        cols: list[int] = []
        for i, doc in enumerate(words):
            toks = doc.split()
            grams = [*toks, *map(" ".join, zip(toks, toks[1:], strict=False))]
            found = [j for j in map(index, grams) if j is not None]
            cols += found
            rows += [i] * len(found)
        return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)

    def _measures(self, x: _Rows, categories: list[str]) -> list[str | None]:
        out: list[str | None] = [None] * len(categories)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(categories):
            groups.setdefault(c, []).append(i)
        models = {c: m for c in groups if isinstance(m := self.measures.get(c), _Linear)}
        if models:
            # Each category's rows as one slice of the entries, ordered by category (a stable
            # sort keeps rows and columns ascending within it), instead of a pass over every
            # entry of the batch per category.
            code = {c: k for k, c in enumerate(models)}
            of_row = np.array([code.get(c, -1) for c in categories])
            entry_of = of_row[x.row]
            order = np.argsort(entry_of, kind="stable")
            bounds = np.searchsorted(entry_of[order], np.arange(len(models) + 1))
            where = np.full(x.n, -1)
        for cat, rows in groups.items():
            model = self.measures.get(cat)
            if isinstance(model, _Linear):
                k = code[cat]
                where[rows] = np.arange(len(rows))
                take = order[bounds[k]:bounds[k + 1]]
                preds = model.predict(_Rows(where[x.row[take]], x.col[take], x.val[take],
                                            len(rows)))
            else:
                preds = [model] * len(rows)
            for i, m in zip(rows, preds, strict=True):
                out[i] = m
        return out

    # -- the file --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's content."""
        meta: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "taxonomy": self.taxonomy.to_dict(),
            "sklearn": self.sklearn_version,
            "stop_words": list(self.stop_words),
            "spam_bar": self.spam_bar,
            "words": self.word_names,
            "max_n": self.max_n,
            "category": self.category.classes,
            "kind": self.kind.classes,
            "urgent": None if self.urgent is None else self.urgent.classes,
            "measures": {},
        }
        arrays: dict[str, Any] = {  # Any: savez's **kwds would also reach allow_pickle
            "word_idf": self.word_idf,
            "char_keys": self.char_keys,
            "char_idf": self.char_idf,
            "beta": np.array([] if self.beta is None else [self.beta], dtype=np.float64),
            **self.category.arrays("category_"),
            **self.kind.arrays("kind_"),
            **(self.urgent.arrays("urgent_") if self.urgent is not None else {}),
        }
        for i, (cat, model) in enumerate(sorted(self.measures.items())):
            if isinstance(model, _Linear):
                meta["measures"][cat] = {"classes": model.classes, "key": f"measure{i}_"}
                arrays.update(model.arrays(f"measure{i}_"))
            else:
                meta["measures"][cat] = {"fixed": model}
        text = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(text, dtype=np.uint8), **arrays)
        return buf.getvalue()

    @classmethod
    def load(cls, path: Path) -> Scorer:
        """Read a file written by ``to_bytes``; ValueError if another format wrote it."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: scorer format {meta.get('format')}, not {FORMAT}")
            measures: dict[str, _Linear | str | None] = {}
            for cat, m in meta["measures"].items():
                if "classes" in m:
                    measures[cat] = _Linear.from_arrays(z, m["key"], m["classes"])
                else:
                    measures[cat] = m["fixed"]
            beta = z["beta"]
            return cls(
                version=meta["version"],
                taxonomy=Taxonomy.from_dict(meta["taxonomy"]),
                sklearn_version=meta["sklearn"],
                stop_words=tuple(meta["stop_words"]),
                spam_bar=meta["spam_bar"],
                word_names=meta["words"],
                word_idf=z["word_idf"],
                char_keys=z["char_keys"],
                char_idf=z["char_idf"],
                max_n=meta["max_n"],
                category=_Linear.from_arrays(z, "category_", meta["category"]),
                beta=float(beta[0]) if len(beta) else None,
                kind=_Linear.from_arrays(z, "kind_", meta["kind"]),
                measures=measures,
                urgent=(_Linear.from_arrays(z, "urgent_", meta["urgent"])
                        if meta.get("urgent") else None),
            )
