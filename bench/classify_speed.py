"""Classifier throughput, load time and memory (printed, not asserted).

Usage: python bench/classify_speed.py [--quick] [--against TREE [--rounds N]]

Measures what the service runs, the numpy-only ``Scorer`` (``shipped_scorer``), with the
scikit-learn ``Classifier`` (``shipped_classifier``, used for training and evaluation) beside
it. Each is measured in a fresh process of its own, pinned to one core with BLAS threads set to
1: load time (from the on-disk cache; the first run ever also trains the model, which is
reported separately), ``classify_many`` throughput over 300-character messages built from the
repository's labelled data, and the process's RSS from /proc/self/status after loading and
after classifying. "ready" is the load plus the first message, which builds the jieba
dictionary. Targets: >= 2,000 messages/s on one core, load < 3 s.

Throughput is counted in the process's CPU time (``time.process_time``), not wall time, so that
other work on a shared machine slows it less; the wall-clock rate is printed beside it. Such a
machine still slows a process's CPU time (shared caches, frequency), so a change is measured
with ``--against TREE`` (e.g. a detached worktree of main): the Scorer of this tree and of TREE
in turn, A B A B, ``--rounds`` times, both with the same model file (this tree's shipped scorer:
editing the model's code renames it), and the median of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {"scorer": "shipped_scorer", "classifier": "shipped_classifier"}


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


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(model: str, n: int, scorer: str | None = None) -> dict:
    """Runs in a fresh process: load ``model`` (``scorer``: that Scorer file), classify ``n``
    messages, report."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    t0 = time.perf_counter()
    import handlers.classify

    if scorer:
        clf = handlers.classify.Scorer.load(Path(scorer))
    else:
        clf = getattr(handlers.classify, MODELS[model])()
    load = time.perf_counter() - t0
    rss_load, _ = rss_mb()
    batch = messages(n)
    clf.classify_many(batch[:1])  # the first message also loads jieba's dictionary
    ready = time.perf_counter() - t0
    clf.classify_many(batch[:50])  # warm caches (regexes)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, n, 500):
        clf.classify_many(batch[i : i + 500])
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_now, rss_peak = rss_mb()
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "sklearn"})
    return {"version": clf.version, "load": load, "ready": ready, "rate": n / cpu,
            "wall_rate": n / dt, "seconds": cpu, "rss_load": rss_load, "rss": rss_now,
            "rss_peak": rss_peak, "heavy": heavy, "tree": str(Path(handlers.__file__).parent)}


def in_fresh_process(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.splitlines()[-1])


def against(tree: Path, n: int, rounds: int) -> int:
    """This tree's Scorer and ``tree``'s, A B A B, on one model file; medians printed."""
    from handlers.classify import shipped_scorer

    model = shipped_scorer()  # trains and caches it on a first run
    version = model.version
    # A copy of its own: the cache drops old versions while other runs train theirs.
    fd, name = tempfile.mkstemp(suffix=".scorer.npz")
    with os.fdopen(fd, "wb") as f:
        f.write(model.to_bytes())
    try:
        return _alternate(tree, n, rounds, name, version)
    finally:
        os.unlink(name)


def _alternate(tree: Path, n: int, rounds: int, scorer: str, version: str) -> int:
    here = str(Path(__file__).resolve().parents[1])
    rates: dict[str, list[float]] = {here: [], str(tree.resolve()): []}
    for _ in range(rounds):
        for root in rates:
            r = in_fresh_process("--measure", "scorer", "-n", str(n), "--scorer", scorer,
                                 "--tree", root)
            rates[root].append(r["rate"])
            print(f"{root}: {r['rate']:,.0f} msg/s CPU ({r['wall_rate']:,.0f} wall)", flush=True)
    (a, ra), (b, rb) = rates.items()
    ma, mb = statistics.median(ra), statistics.median(rb)
    print(f"model {version}, {n} messages, {rounds} rounds; median msg/s on one core (CPU "
          f"time): this tree {ma:,.0f}, {b} {mb:,.0f}: {ma / mb:.2f}x")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages, for CI")
    ap.add_argument("--measure", choices=sorted(MODELS), help=argparse.SUPPRESS)
    ap.add_argument("-n", type=int, default=10000, help=argparse.SUPPRESS)
    ap.add_argument("--scorer", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    ap.add_argument("--against", type=Path, help="another tree to compare the Scorer with")
    ap.add_argument("--rounds", type=int, default=3, help="with --against: A B pairs")
    args = ap.parse_args()
    if args.measure:  # the child
        if args.tree:
            sys.path.insert(0, args.tree)
        print(json.dumps(measure(args.measure, args.n, args.scorer)))
        return 0
    n = 1000 if args.quick else args.n
    if args.against:
        return against(args.against, n, args.rounds)

    # Both caches (the Classifier's pickle and the Scorer's file); the first run ever trains.
    t0 = time.perf_counter()
    in_fresh_process("--measure", "scorer", "-n", "50")
    print(f"caches ready in {time.perf_counter() - t0:.1f} s (includes training on a first run)")
    runs = {model: in_fresh_process("--measure", model, "-n", str(n)) for model in MODELS}
    print(f"model {runs['scorer']['version']}; {n} messages of 300 characters, one core")
    print(f"{'':24}{'load':>8}{'ready':>8}{'msgs/s CPU':>12}{'RSS loaded':>12}{'RSS after':>11}"
          f"{'peak':>8}  scipy/sklearn loaded")
    for model, label in (("scorer", "Scorer (the service)"), ("classifier", "Classifier")):
        r = runs[model]
        print(f"{label:24}{r['load']:>7.2f}s{r['ready']:>7.2f}s{r['rate']:>12,.0f}"
              f"{r['rss_load']:>9.0f} MB"
              f"{r['rss']:>8.0f} MB{r['rss_peak']:>5.0f} MB  {', '.join(r['heavy']) or 'none'}")
    s, c = runs["scorer"], runs["classifier"]
    print(f"Scorer / Classifier: throughput {s['rate'] / c['rate']:.2f}x, load "
          f"{s['load'] / c['load']:.2f}x, RSS after classifying {s['rss'] / c['rss']:.2f}x "
          f"({c['rss'] - s['rss']:.0f} MB less)")
    print(f"the service's scorer: {s['rate']:,.0f} msg/s on one core in CPU time "
          f"({s['wall_rate']:,.0f} wall; target >= 2,000), "
          f"loaded in {s['load']:.2f} s (target < 3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
