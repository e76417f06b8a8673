"""Every bench script runs in its quick form, so that none of them rots (figures not asserted)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Each script starts its own real servers (and serve_ingest a serve process): not the fast tier.
pytestmark = pytest.mark.acceptance

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run_all():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What `make bench` runs; faults.py is exercised by tests/faults, with the same harness.
SCRIPTS = [p for p in _run_all().scripts(None) if p.name != "faults.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_runs_quick(script: Path):
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True,
                          text=True, timeout=600, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip(), "the script printed no figures"


def test_run_all_ends_with_each_target_in_a_table():
    done = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--only",
                           "classify_speed", "parse_fuzz"], capture_output=True, text=True,
                          timeout=600, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = done.stdout.split("== summary", 1)[1]
    rows = [line for line in summary.splitlines() if line.startswith("| ")]
    assert rows[0].split("|")[1].strip() == "script"
    assert [r.split("|")[1].strip() for r in rows[1:] if r.split("|")[1].strip()] == [
        "classify_speed", "parse_fuzz"]
    assert all("target" in r and "no target" not in r for r in rows[1:])


def test_web_form_sustained_files_and_acknowledges_every_letter_it_showed_a_number_for():
    """The sustained mode: clients GET the form and POST it while the service files; at the end
    every tracking number a page showed belongs to a filed letter whose acknowledgement the
    outbox wrote (the script waits for the workers, and exits 1 if one is missing)."""
    done = subprocess.run([sys.executable, str(BENCH / "web_form.py"), "--quick", "--sustained",
                           "2", "--clients", "20"], capture_output=True, text=True, timeout=600,
                          cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = re.search(r"filed and acknowledged: (\d+) of (\d+) letters posted", done.stdout)
    assert figures, done.stdout
    assert int(figures[1]) == int(figures[2]) > 0
    assert re.search(r"sustained ratio ours/bare: median [\d.]+ .*target >= 0.4", done.stdout)


def test_web_form_stalls_reports_the_event_loop_of_each_window() -> None:
    """``--stalls``: the service runs under bench/loop_probe.py, and each of our windows gets
    the histogram of how late the loop woke, its full collections and its long callbacks."""
    done = subprocess.run([sys.executable, str(BENCH / "web_form.py"), "--quick", "--sustained",
                           "2", "--clients", "20", "--stalls"], capture_output=True, text=True,
                          timeout=600, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    late = re.search(r"loop late by ms \(count\): <1:(\d+) .* >=50:(\d+); stalled (\d+) ms/s",
                     done.stdout)
    assert late and int(late[1]) > 0, done.stdout
    assert re.search(r"gc: \d+ full collection\(s\)", done.stdout), done.stdout
    callbacks = re.search(r"callbacks: (\d+), busy \d+ ms/s", done.stdout)
    assert callbacks and int(callbacks[1]) > 1000, done.stdout


def test_classify_identity_finds_a_changed_output_and_no_other(tmp_path: Path) -> None:
    """The speed work's check: a dump compares equal to itself; a copy with one letter's
    category changed is reported by name, with a non-zero exit."""
    import json

    tool = str(BENCH / "classify_identity.py")
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    done = subprocess.run([sys.executable, tool, "dump", str(before)], capture_output=True,
                          text=True, timeout=600, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    def compare() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, tool, "compare", str(before), str(after)],
                              capture_output=True, text=True, timeout=600, cwd=BENCH.parent)

    after.write_bytes(before.read_bytes())
    assert compare().returncode == 0
    data = json.loads(before.read_text(encoding="utf-8"))
    rows = data["runs"]["batch7"]
    key = next(iter(rows))
    rows[key]["category"] = "not-a-category"
    after.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    differs = compare()
    assert differs.returncode == 1 and f"batch7 {key} category" in differs.stdout, differs.stdout
