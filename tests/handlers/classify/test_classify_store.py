"""Saving models and swapping them into a running service without a restart. The holder
hands out the numpy-only Scorer; the Classifier is what training saves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from handlers.classify import (
    ClassifierHolder,
    Scorer,
    load_taxonomy,
    save_model,
    store,
    train,
)
from handlers.classify.store import current_version, load_version, scorer_path

MSG = ("", "派出所窗口排队两个小时，工作人员还在聊天")


@pytest.fixture()
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "CHECK_INTERVAL", 0.0)  # look at the model dir on every get()


def test_empty_or_missing_model_dir_serves_the_shipped_model(tmp_path: Path, shipped) -> None:
    assert ClassifierHolder(tmp_path / "missing").get().version == shipped.version
    assert ClassifierHolder(tmp_path).get().version == shipped.version


def test_saved_model_round_trips(tmp_path: Path, small_examples: list[dict]) -> None:
    clf = train(small_examples, load_taxonomy())
    version = save_model(clf, tmp_path)
    assert version == clf.version == current_version(tmp_path)
    loaded = load_version(tmp_path, version)
    assert loaded.classify(*MSG) == clf.classify(*MSG)
    served = ClassifierHolder(tmp_path).get()
    assert isinstance(served, Scorer) and served.classify(*MSG) == clf.classify(*MSG)


def test_holder_picks_up_a_newer_model(tmp_path: Path, small_examples, shipped, no_wait) -> None:
    holder = ClassifierHolder(tmp_path)
    assert holder.get().version == shipped.version
    newer = train(small_examples, load_taxonomy())
    save_model(newer, tmp_path)
    assert holder.get().version == newer.version
    assert holder.get() is holder.get()  # unchanged ``current``: no reload


def test_holder_checks_at_most_every_interval(tmp_path: Path, small_examples, shipped,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A long interval: training below takes seconds on a loaded CI machine.
    monkeypatch.setattr(store, "CHECK_INTERVAL", 3600.0)
    holder = ClassifierHolder(tmp_path)
    first = holder.get()
    save_model(train(small_examples, load_taxonomy()), tmp_path)
    assert holder.get() is first  # within the interval since the last look


def test_model_from_another_scikit_learn_is_retrained(tmp_path: Path, small_examples) -> None:
    clf = train(small_examples, load_taxonomy())
    version = save_model(clf, tmp_path)
    meta_path = tmp_path / f"{version}.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["sklearn"] = "0.0.1"
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    (tmp_path / f"{version}.joblib").write_bytes(b"not a pickle from this version")
    rebuilt = load_version(tmp_path, version)
    msg = ("", "法院执行局对老赖没办法，判决书成了白条")
    assert rebuilt.classify(*msg) == clf.classify(*msg)


def test_broken_new_model_keeps_the_old_one_serving(tmp_path, small_examples, no_wait) -> None:
    holder = ClassifierHolder(tmp_path)
    good = train(small_examples, load_taxonomy())
    save_model(good, tmp_path)
    assert holder.get().version == good.version
    (tmp_path / "current").write_text("m-doesnotexist\n")
    os.utime(tmp_path / "current", (1, 1))  # a different mtime, as after a new train run
    assert holder.get().version == good.version


def test_model_dir_from_before_scorers_still_serves_and_gains_the_file(
    tmp_path: Path, small_examples
) -> None:
    clf = train(small_examples, load_taxonomy())
    version = save_model(clf, tmp_path)
    scorer_path(tmp_path, version).unlink()  # as an older release saved it
    served = ClassifierHolder(tmp_path).get()
    assert served.version == version and served.classify(*MSG) == clf.classify(*MSG)
    assert Scorer.load(scorer_path(tmp_path, version)).classify(*MSG) == clf.classify(*MSG)


def test_damaged_scorer_file_is_rebuilt_from_the_model(tmp_path: Path, small_examples) -> None:
    clf = train(small_examples, load_taxonomy())
    version = save_model(clf, tmp_path)
    scorer_path(tmp_path, version).write_bytes(b"PK\x03\x04 cut short")
    assert ClassifierHolder(tmp_path).get().classify(*MSG) == clf.classify(*MSG)
    assert Scorer.load(scorer_path(tmp_path, version)).version == version


def test_old_versions_are_pruned_with_their_scorers(
    tmp_path: Path, small_examples, taxonomy_only, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "KEEP_VERSIONS", 1)
    old = save_model(taxonomy_only, tmp_path)
    os.utime(tmp_path / f"{old}.json", (1, 1))  # clearly older than the next one
    new = save_model(train(small_examples, load_taxonomy()), tmp_path)
    assert not list(tmp_path.glob(f"{old}*"))
    assert scorer_path(tmp_path, new).exists()


REPORT_B = Path(__file__).resolve().parents[2] / "data" / "reports" / "second_report.txt"


def test_labels_of_another_report_teach_only_kind() -> None:
    tax_a, tax_b = load_taxonomy(), load_taxonomy(REPORT_B)
    examples = [
        {"body": "a", "category": "3", "measure": "3.2", "kind": "complaint"},  # the corpus: A
        {"body": "b", "category": "spam", "kind": None},
        {"body": "c", "category": "3", "measure": "3.1", "kind": "report",
         "taxonomy_version": tax_b.version},  # staff, under B
        {"body": "d", "category": "2", "measure": None, "kind": "inquiry",
         "taxonomy_version": None},  # staff, version unknown: chosen from the configured report
    ]
    assert store.examples_for(tax_a, examples[:2]) == examples[:2]
    got = store.examples_for(tax_b, examples)
    assert [(e["category"], e.get("measure"), e["kind"]) for e in got] == [
        (None, None, "complaint"), (None, None, None), ("3", "3.1", "report"),
        ("2", None, "inquiry")]


def test_a_model_of_another_report_is_not_served(tmp_path: Path, small_examples,
                                                 no_wait) -> None:
    """The model dir holds a model trained for the shipped report; the configured report is
    another one: the holder serves a model of the configured report instead."""
    tax_b = load_taxonomy(REPORT_B)
    save_model(train(small_examples, load_taxonomy()), tmp_path)
    served = ClassifierHolder(tmp_path, report=REPORT_B).get()
    assert served.taxonomy.version == tax_b.version
    result = served.classify("", "申请法律援助要先开经济困难证明，跑了三趟还没受理")
    assert result.taxonomy_version == tax_b.version and result.category == "3"
    # One trained for the configured report is served as before.
    mine = train(store.examples_for(tax_b, small_examples), tax_b)
    save_model(mine, tmp_path)
    assert ClassifierHolder(tmp_path, report=REPORT_B).get().version == mine.version
