"""Repeat letters: how well the matcher links the labelled pairs, and how fast it matches.

Usage: python bench/repeats.py [--quick] [--sweep]

Figures (printed, not asserted; tests/handlers/test_repeats_pairs.py holds the held-out ones):

- precision and recall on both halves of tests/data/repeat_pairs.jsonl at the configured
  defaults, by content alone and with the sender rule, and per kind of pair;
- the background rate: links per letter per 1,000 open cases among unlabelled letters about
  different matters (tests/data/restrict_*.jsonl), the price of a threshold the pairs cannot
  show; ``--sweep`` re-runs the tuning on the tuning half (the best F1 among thresholds and
  n-gram sizes whose background rate is at most 1 per 1,000);
- speed: one new letter matched (signed, LSH query, exact re-check) against 5,000 open cases,
  letters/s on one core, against the baseline of a plain datasketch ``MinHashLSH.query`` with
  the MinHash already made. Target: >= 200 letters/s on a shared core (a letter is matched once,
  at intake; the mailbox brings a few a minute, a backlog import thousands). The open cases
  are two shipped letters joined at random, so many share a half and are genuinely linked:
  "links per letter" is high here by construction, and each link costs its exact check.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasketch import LeanMinHash, MinHashLSH  # noqa: E402

from handlers.classify.store import read_jsonl, shipped_examples  # noqa: E402
from handlers.repeats import (  # noqa: E402
    DEFAULT_NGRAM,
    DEFAULT_THRESHOLD,
    RepeatIndex,
    Signature,
    load_report_text,
)
from handlers.repeats_eval import background_rate, evaluate, load_pairs, sweep  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "repeat_pairs.jsonl"
BACKGROUND = [ROOT / "tests" / "data" / "restrict_eval.jsonl",
              ROOT / "tests" / "data" / "restrict_blind.jsonl"]
MAX_RATE = 1.0


def quality(report: str, do_sweep: bool) -> None:
    background = [(d.get("subject") or "", d.get("body") or "")
                  for path in BACKGROUND for d in read_jsonl(path)]
    print(f"== pairs at threshold {DEFAULT_THRESHOLD}, {DEFAULT_NGRAM}-grams")
    for split in ("tune", "heldout"):
        result = evaluate(load_pairs(PAIRS, split), DEFAULT_THRESHOLD, report_text=report)
        print(f"{split:8} content   {result.content.line()}")
        print(f"{split:8} +sender   {result.combined.line()}")
        print(f"{split:8} by kind   " + ", ".join(f"{k} {a}/{n}" for k, (a, n)
                                                  in result.by_kind.items()))
    rate = background_rate(background, DEFAULT_THRESHOLD, report_text=report)
    print(f"background: {rate:.2f} links per letter per 1,000 open cases "
          f"({len(background)} letters; target <= {MAX_RATE})")
    if do_sweep:
        rows = sweep(load_pairs(PAIRS, "tune"), background,
                     [t / 100 for t in range(3, 21)], (2, 3), MAX_RATE, report)
        print("== sweep on the tuning half (background rate <= 1 per 1,000), best first")
        for row in rows[:8]:
            print(f"threshold {row.threshold:.2f} {row.ngram}-grams  rate {row.rate:.2f}  "
                  f"{row.figures.line()}")


def open_cases(n: int) -> list[tuple[str, str]]:
    """``n`` distinct letters of realistic length: two shipped letters joined, at random."""
    rng = random.Random(20)
    texts = [e.get("body") or "" for e in shipped_examples()]
    return [("", f"{rng.choice(texts)}{rng.choice(texts)}") for _ in range(n)]


def speed(report: str, cases: int, queries: int) -> None:
    index = RepeatIndex(report_text=report)
    letters = open_cases(cases + queries)
    t0 = time.perf_counter()
    signatures = [index.sign(s, t) for s, t in letters[:cases]]
    for i, sig in enumerate(signatures):
        index.insert(i, sig)
    built = time.perf_counter() - t0
    new = letters[cases:]
    t0 = time.perf_counter()
    found = sum(len(index.query(index.sign(s, t))) for s, t in new)
    full = len(new) / (time.perf_counter() - t0)
    def lean(sig: Signature) -> LeanMinHash:  # the index's own MinHash values, as datasketch's
        return LeanMinHash(seed=1, hashvalues=sig.hashvalues, scheme="affine64")

    made = [lean(index.sign(s, t)) for s, t in new]
    # The baseline: datasketch's own index of the same cases, with the index's band layout
    lsh = MinHashLSH(threshold=index.threshold, num_perm=index.num_perm, weights=(0.2, 0.8))
    for i, sig in enumerate(signatures):
        lsh.insert(i, lean(sig), check_duplication=False)
    t0 = time.perf_counter()
    for minhash in made:
        lsh.query(minhash)
    plain = len(made) / (time.perf_counter() - t0)
    print(f"== speed against {cases:,} open cases")
    print(f"index built in {built:.2f} s ({cases / built:,.0f} letters/s)")
    print(f"baseline: datasketch MinHashLSH.query alone {plain:,.0f} letters/s")
    print(f"matching one letter (sign, query, exact re-check) {full:,.0f} letters/s "
          f"({found / len(new):.2f} links per letter; target >= 200)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    report = load_report_text()
    quality(report, args.sweep and not args.quick)
    speed(report, 5000, 300 if args.quick else 2000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
