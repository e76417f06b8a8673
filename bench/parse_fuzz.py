"""Long fuzz run of the mail parser: 10,000 mutated corpus messages (the CI test runs 200).

Same mutations as tests/handlers/test_parse_fuzz.py (byte flips, truncation, duplicated headers,
inserted MIME and encoding fragments), drawn from a seeded random generator so a failure can be
replayed. Prints how many were parsed, the slowest parse and any exception; exits 1 on an
exception or a parse slower than the bound.

    python bench/parse_fuzz.py [--n 10000] [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handlers.loop_guard import bounced_message_ids, machine_kind  # noqa: E402
from handlers.parse import parse_message  # noqa: E402
from handlers.step import LoopPolicy  # noqa: E402
from testing.mutations import MUTATIONS, PARSE_SECONDS, SAMPLES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 300 if args.quick else args.n
    rng = random.Random(args.seed)
    slowest, failures, t0 = 0.0, 0, time.perf_counter()
    for i in range(n):
        raw = rng.choice(SAMPLES)
        for _ in range(rng.randint(1, 6)):
            raw = rng.choice(MUTATIONS)(raw, rng.randint(0, 10**6), rng.randint(0, 255))
        start = time.perf_counter()
        try:
            parsed = parse_message(raw)
            machine_kind(parsed, LoopPolicy())
            bounced_message_ids(parsed)
        except Exception:
            failures += 1
            print(f"case {i} (seed {args.seed}) raised:\n{traceback.format_exc()}")
        slowest = max(slowest, time.perf_counter() - start)
    elapsed = time.perf_counter() - t0
    print(f"parser fuzz: {n} mutated messages in {elapsed:.1f} s ({n / elapsed:.0f}/s), "
          f"slowest {slowest * 1000:.0f} ms, exceptions {failures} "
          f"(target: no exception, each under {PARSE_SECONDS * 1000:.0f} ms)")
    return 1 if failures or slowest > PARSE_SECONDS else 0


if __name__ == "__main__":
    sys.exit(main())
