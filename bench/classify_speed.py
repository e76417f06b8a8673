"""Classifier throughput and load time (printed, not asserted).

Usage: python bench/classify_speed.py [--quick]

Load time is the time to get the shipped model in a fresh process (from the on-disk cache if
it exists; the first run ever also trains it, which is reported separately). Throughput is
``classify_many`` over 300-character messages built from the repository's labelled data, on
one core (BLAS threads are pinned to 1 before numpy loads).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def messages(n: int, length: int = 300) -> list[tuple[str, str]]:
    from handlers.classify.store import shipped_examples

    bodies = [ex["body"] for ex in shipped_examples()]
    out = []
    for i in range(n):
        # Repeat one real message up to the length, so the share of traditional-character
        # and English messages stays what it is in the data.
        body = bodies[i % len(bodies)] + "\n"
        out.append(("", (body * (length // len(body) + 1))[:length]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages, for CI")
    args = ap.parse_args()
    n = 1000 if args.quick else 10000

    t0 = time.perf_counter()
    from handlers.classify import shipped_classifier

    clf = shipped_classifier()
    load = time.perf_counter() - t0
    print(f"load time: {load:.2f} s (model {clf.version})")

    batch = messages(n)
    clf.classify_many(batch[:50])  # warm caches (jieba, regexes)
    t0 = time.perf_counter()
    for i in range(0, n, 500):
        clf.classify_many(batch[i : i + 500])
    dt = time.perf_counter() - t0
    print(f"throughput: {n / dt:,.0f} msgs/s ({n} messages of 300 characters, {dt:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
