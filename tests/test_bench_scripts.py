"""Every bench script runs in its quick form, so that none of them rots (figures not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
# faults.py is exercised by tests/faults, with the same harness.
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "faults.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_runs_quick(script: Path):
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True,
                          text=True, timeout=600, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip(), "the script printed no figures"
