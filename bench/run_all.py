"""Runs every benchmark in ``bench/`` (what ``make bench`` does) and ends with a table of each
figure that has a target, so the run reads as one report.

Each script prints its own figures against a baseline measured in the same run; the lines
that name a target ("target >= 0.05", "target < 300") are collected here. A script with more
than one mode (``MODES``: web_form.py in alternating rounds and ``--sustained``) runs once per
mode. Asserts nothing; exits non-zero if a script failed.

    python bench/run_all.py [--quick] [--only imap_ingest web_form ...]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# Scripts measured in more than one mode: each list is one more run with those arguments.
MODES: dict[str, list[list[str]]] = {"web_form": [[], ["--sustained", "10"]]}


# Scripts here that measure nothing themselves: the event-loop probe web_form.py --stalls runs
# the service under, and the check that a classifier speed change kept every output.
TOOLS = ("loop_probe.py", "classify_identity.py")


def scripts(only: list[str] | None) -> list[Path]:
    """The benchmarks (``only``: those named), in name order."""
    found = sorted(p for p in BENCH.glob("*.py")
                   if p.name != Path(__file__).name and p.name not in TOOLS)
    return [p for p in found if not only or p.stem in only]


def runs(only: list[str] | None) -> list[tuple[Path, list[str]]]:
    """Each script with the arguments of each of its modes."""
    return [(p, mode) for p in scripts(only) for mode in MODES.get(p.stem, [[]])]


def run(script: Path, quick: bool, mode: list[str]) -> tuple[int, list[str], float]:
    """Run one script, echoing its output; its exit code, target lines and seconds taken."""
    print(f"== {' '.join([script.name, *mode])}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script), *(["--quick"] if quick else []), *mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=BENCH.parent)
    assert proc.stdout is not None
    targets = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        if "target" in line:
            targets.append(line.strip())
    return proc.wait(), targets, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="each script in its quick form")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these scripts (file stems)")
    args = ap.parse_args()
    results = [(" ".join([p.stem, *mode]), *run(p, args.quick, mode))
               for p, mode in runs(args.only)]
    print(f"\n== summary ({platform.node()}, {platform.machine()}, "
          f"Python {platform.python_version()}{', quick' if args.quick else ''})")
    print(f"| {'script':<16} | {'s':>5} | figure against its target")
    print(f"|{'-' * 18}|{'-' * 7}|{'-' * 40}")
    for name, code, targets, seconds in results:
        lines = targets or (["(no target: see its output above)"] if code == 0 else [])
        if code != 0:
            lines = [f"FAILED with exit code {code}", *lines]
        for i, line in enumerate(lines):
            shown, secs = (name, f"{seconds:5.0f}") if i == 0 else ("", "")
            print(f"| {shown:<16} | {secs:>5} | {line}")
    return 1 if any(code != 0 for _, code, _, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
