"""Saving models and swapping them into a running service without a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from handlers.classify import ClassifierHolder, load_taxonomy, save_model, store, train
from handlers.classify.store import current_version, load_version


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
    msg = ("", "派出所窗口排队两个小时，工作人员还在聊天")
    assert loaded.classify(*msg) == clf.classify(*msg)


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
