"""How well the repeat-letter matcher links labelled pairs: precision and recall, and the tuning.

``tests/data/repeat_pairs.jsonl`` holds pairs of letters written for this purpose, each labelled
whether staff should see them linked: the same event reworded by another citizen, the same
person's follow-up (positives); the same topic but another event, and letters quoting the same
passage of the report about different things (negatives). Its ``heldout`` half was written
before the matcher existed and is never used to choose a setting; ``tune`` is.

The evaluation goes through the real index: every pair's first letter is inserted into one
:class:`handlers.repeats.RepeatIndex` (so each query also meets every other letter), the second
is queried, and the pair counts as linked by content when its first letter is among the matches.
"Linked" overall adds the sender rule (a): the two share a normalised address or phone.
``bench/repeats_eval.py`` prints the figures; ``tests/handlers/test_repeats_pairs.py`` holds
the held-out figures to what the README reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.classify.store import read_jsonl
from handlers.repeats import DEFAULT_NGRAM, DEFAULT_NUM_PERM, RepeatIndex, sender_keys


@dataclass(frozen=True)
class Figures:
    """Counts of one way of linking over a set of pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    missed: tuple[str, ...] = field(default=())  # ids of positives not linked
    wrong: tuple[str, ...] = field(default=())  # ids of negatives linked

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def line(self) -> str:
        return (f"precision {self.precision:.3f}  recall {self.recall:.3f}  F1 {self.f1:.3f}  "
                f"(tp {self.tp}, fp {self.fp}, fn {self.fn}, tn {self.tn})")


@dataclass(frozen=True)
class Result:
    content: Figures  # (b) alone: near-duplicate text
    combined: Figures  # (a) or (b): what staff would see linked
    by_kind: dict[str, tuple[int, int]]  # kind → (linked, pairs), combined


def load_pairs(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    """The labelled pairs of ``path`` (JSON lines), of one split or all."""
    return [p for p in read_jsonl(path) if split is None or p["split"] == split]


def _figures(outcomes: Iterable[tuple[str, bool, bool]]) -> Figures:
    tp = fp = fn = tn = 0
    missed, wrong = [], []
    for pair_id, label, linked in outcomes:
        if label and linked:
            tp += 1
        elif label:
            fn += 1
            missed.append(pair_id)
        elif linked:
            fp += 1
            wrong.append(pair_id)
        else:
            tn += 1
    return Figures(tp, fp, fn, tn, tuple(missed), tuple(wrong))


def evaluate(pairs: Sequence[dict[str, Any]], threshold: float, ngram: int = DEFAULT_NGRAM,
             num_perm: int = DEFAULT_NUM_PERM, report_text: str = "") -> Result:
    """Link every pair as the service would and count the outcomes against the labels."""
    index = RepeatIndex(threshold, num_perm, ngram, report_text)
    for i, pair in enumerate(pairs):
        index.insert(i, index.sign(pair["a"]["subject"], pair["a"]["text"]))
    content, combined = [], []
    kinds: Counter[str] = Counter()
    linked_kinds: Counter[str] = Counter()
    for i, pair in enumerate(pairs):
        a, b = pair["a"], pair["b"]
        by_text = any(m.case_id == i for m in index.query(index.sign(b["subject"], b["text"])))
        by_sender = sender_keys(a.get("from_addr"), a.get("phone")).shares(
            sender_keys(b.get("from_addr"), b.get("phone")))
        content.append((pair["id"], pair["label"], by_text))
        combined.append((pair["id"], pair["label"], by_text or by_sender))
        kinds[pair["kind"]] += 1
        linked_kinds[pair["kind"]] += by_text or by_sender
    return Result(_figures(content), _figures(combined),
                  {k: (linked_kinds[k], n) for k, n in sorted(kinds.items())})


def background_rate(letters: Sequence[tuple[str, str]], threshold: float,
                    ngram: int = DEFAULT_NGRAM, report_text: str = "") -> float:
    """Links per letter per 1,000 open cases among letters about different matters.

    Labelled pairs say nothing of the base rate: at intake a letter meets thousands of
    unrelated open cases, and a threshold that separates the pairs well may still link every
    letter to a few strangers. ``letters`` are unlabelled letters taken to be about different
    matters (a few of them are not, so the rate is an upper bound)."""
    index = RepeatIndex(threshold, ngram=ngram, report_text=report_text)
    signatures = [index.sign(s, t) for s, t in letters]
    for i, sig in enumerate(signatures):
        index.insert(i, sig)
    links = sum(len(index.query(sig, exclude=i)) for i, sig in enumerate(signatures))
    return links / len(letters) / len(letters) * 1000 if letters else 0.0


@dataclass(frozen=True)
class Setting:
    threshold: float
    ngram: int
    figures: Figures  # content figures on the pairs
    rate: float  # background links per letter per 1,000 open cases


def sweep(pairs: Sequence[dict[str, Any]], background: Sequence[tuple[str, str]],
          thresholds: Iterable[float], ngrams: Iterable[int], max_rate: float,
          report_text: str = "") -> list[Setting]:
    """Every (threshold, n-gram size) whose background rate is at most ``max_rate``, best F1
    on the pairs first (ties: the higher threshold)."""
    rows = []
    for n in ngrams:
        for t in thresholds:
            rate = background_rate(background, t, n, report_text)
            if rate <= max_rate:
                rows.append(Setting(t, n, evaluate(pairs, t, n, report_text=report_text).content,
                                    rate))
    return sorted(rows, key=lambda r: (-r.figures.f1, -r.threshold, r.ngram))
