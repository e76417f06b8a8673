"""Dump every output of the service's Scorer on every letter we hold, or compare two dumps.

Usage:
    python bench/classify_identity.py dump OUT.json [--extra FILE.jsonl ...] [--scorer FILE.npz]
    python bench/classify_identity.py compare BEFORE.json AFTER.json

A speed change to the classifier must not change a decision. ``dump`` classifies each letter of
tests/data/*.jsonl, the training corpus and the development set (handlers/classify/data/), plus
any ``--extra`` files (e.g. /work/shared/data/feedback_dev.jsonl), three ways: one at a time,
in batches of 7 and in batches of 500 (batch code paths differ), and records what a user sees:
category, kind, measure, urgent flag, cues and score, restricted flag and reason, confidence,
the top 3, the report probability and cue, and the explanation. ``compare`` reports every
difference, floats compared to 1e-9, and exits non-zero if there is one. Run ``dump`` with
PYTHONPATH pointing at the tree before the change and again at the tree after it.

Editing a module of the model's code (version.py) renames the shipped model and trains it
anew, and two trainings on a loaded machine can differ in the last digits; ``--scorer`` holds
the model fixed (a ``.scorer.npz`` from the cache, ~/.cache/feedback-bot/classify/), so that a
comparison sees the code alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.classify import Classification

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-9


def letters(extra: list[Path]) -> list[tuple[str, str, str]]:
    """(id, subject, body) of every letter in the repository's labelled files and ``extra``."""
    files = sorted((ROOT / "tests" / "data").glob("*.jsonl"))
    files += sorted((ROOT / "handlers" / "classify" / "data").glob("*.jsonl"))
    out = []
    for path in [*files, *extra]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            rec = json.loads(line)
            # repeat_pairs.jsonl holds two letters a record, each with its "text".
            for side in ("a", "b") if "a" in rec and "b" in rec else ("",):
                r = rec[side] if side else rec
                body = r.get("body", r.get("text", ""))
                out.append((f"{path.name}:{n}{side}", r.get("subject") or "", body or ""))
    return out


def outputs(c: Classification) -> dict:
    r = c.restriction()
    return {
        "category": c.category, "kind": c.kind, "measure": c.measure,
        "confidence": c.confidence, "top": c.top, "explanation": c.explanation,
        "report_prob": c.report_prob, "report_cue": c.report_cue, "urgent": c.urgent,
        "urgent_score": c.urgent_score, "urgent_cues": list(c.urgent_cues),
        "restricted": r.restricted, "restricted_by": r.by, "restricted_reason": r.reason,
    }  # fmt: skip


def dump(out: Path, extra: list[Path], model: Path | None) -> None:
    sys.path.insert(0, str(ROOT))
    from handlers.classify import Scorer, shipped_scorer

    scorer = Scorer.load(model) if model else shipped_scorer()
    items = letters(extra)
    pairs = [(s, b) for _, s, b in items]
    runs = {"single": [scorer.classify(s, b) for s, b in pairs]}
    for size in (7, 500):
        runs[f"batch{size}"] = [c for i in range(0, len(pairs), size)
                                for c in scorer.classify_many(pairs[i:i + size])]
    doc = {name: {key: outputs(c) for (key, _, _), c in zip(items, got, strict=True)}
           for name, got in runs.items()}
    out.write_text(json.dumps({"version": scorer.version, "runs": doc}, ensure_ascii=False))
    print(f"{len(items)} letters x {len(runs)} ways, model {scorer.version} -> {out}")


def differ(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return not math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) != len(b) or any(differ(x, y) for x, y in zip(a, b, strict=True))
    return a != b


def compare(before: Path, after: Path) -> int:
    a = json.loads(before.read_text(encoding="utf-8"))
    b = json.loads(after.read_text(encoding="utf-8"))
    diffs = 0
    for run, rows in a["runs"].items():
        other = b["runs"].get(run, {})
        if rows.keys() != other.keys():
            print(f"{run}: different letters")
            diffs += 1
            continue
        for key, out in rows.items():
            for field, value in out.items():
                if differ(value, other[key].get(field)):
                    diffs += 1
                    if diffs <= 20:
                        print(f"{run} {key} {field}: {value!r} -> {other[key].get(field)!r}")
    n = sum(len(rows) for rows in a["runs"].values())
    print(f"{n} outputs compared ({len(a['runs'])} ways): {diffs} differences")
    return 1 if diffs else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--extra", type=Path, nargs="*", default=[])
    d.add_argument("--scorer", type=Path, help="a saved Scorer file instead of the shipped one")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        dump(args.out, args.extra, args.scorer)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
