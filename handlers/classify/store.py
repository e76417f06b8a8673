"""Saving, loading and hot-swapping trained classifiers.

A model directory holds, per version, ``<version>.joblib`` (the fitted model),
``<version>.json`` (metadata: scikit-learn version, taxonomy) and
``<version>.examples.jsonl`` (its training data), plus a one-line ``current`` file naming the
version in use. ``feedback-bot train`` writes a new version and then replaces ``current``
atomically; ``ClassifierHolder`` in the running service notices the new mtime (checked at most
every 10 s) and loads it, so no restart is needed. A pickle is only trusted under the
scikit-learn version that wrote it; under another one the model is retrained from the saved
examples, which gives the same model because training is deterministic.

The shipped model (taxonomy + the project's corpus + the development set) is not committed as
a binary: it is trained on first use and cached under a content hash, so
``feedback-bot train`` without ``--config`` rebuilds exactly the same thing.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

import joblib
import sklearn

from .model import Classifier, data_version, train
from .taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
CORPUS = DATA_DIR / "corpus.jsonl"
DEV_COPY = DATA_DIR / "dev.jsonl"
CHECK_INTERVAL = 10.0  # seconds between looks at the model dir's ``current`` file
KEEP_VERSIONS = 3  # a model is ~4 MB; older versions than this are deleted on save


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def shipped_examples(*, with_dev: bool = True) -> list[dict]:
    """Labelled data in the repository: our corpus, plus the development set by default."""
    examples = read_jsonl(CORPUS)
    return examples + read_jsonl(DEV_COPY) if with_dev else examples


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; models are not secret
    os.replace(tmp, path)


def _prune(model_dir: Path, keep: str) -> None:
    """Delete all but the newest KEEP_VERSIONS versions (never ``keep``, the current one)."""
    metas = sorted(model_dir.glob("m-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for meta in metas[KEEP_VERSIONS:]:
        version = meta.name.removesuffix(".json")
        if version == keep:
            continue
        for suffix in (".joblib", ".examples.jsonl", ".json"):
            (model_dir / f"{version}{suffix}").unlink(missing_ok=True)


def save_model(clf: Classifier, model_dir: Path) -> str:
    """Write ``clf`` into ``model_dir`` and make it current; returns its version."""
    model_dir.mkdir(parents=True, exist_ok=True)
    v = clf.version
    examples = getattr(clf, "examples", [])
    lines = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in examples)
    _atomic_write(model_dir / f"{v}.examples.jsonl", lines.encode("utf-8"))
    meta = {"version": v, "sklearn": sklearn.__version__, "taxonomy": clf.taxonomy.to_dict()}
    _atomic_write(model_dir / f"{v}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    tmp = model_dir / f".{v}.{os.getpid()}.joblib.tmp"  # two processes may save at once
    joblib.dump(clf, tmp, compress=3)  # ~4x smaller; decompression costs ~0.1 s at load
    os.replace(tmp, model_dir / f"{v}.joblib")
    _atomic_write(model_dir / "current", f"{v}\n".encode())
    _prune(model_dir, v)
    return v


def load_version(model_dir: Path, version: str) -> Classifier:
    """Load one saved version, retraining it if scikit-learn changed since it was saved."""
    meta = json.loads((model_dir / f"{version}.json").read_text(encoding="utf-8"))
    if meta.get("sklearn") == sklearn.__version__:
        return joblib.load(model_dir / f"{version}.joblib")
    log.warning(
        "model %s was saved under scikit-learn %s; retraining", version, meta.get("sklearn")
    )
    examples = read_jsonl(model_dir / f"{version}.examples.jsonl")
    clf = train(examples, Taxonomy.from_dict(meta["taxonomy"]))
    clf.version = version  # same data, same model: keep the name staff have seen
    return clf


def current_version(model_dir: Path) -> str | None:
    try:
        return (model_dir / "current").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _cache_dir() -> Path:
    base = os.environ.get("FEEDBACK_BOT_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root if os.environ.get("FEEDBACK_BOT_CACHE") else root / "feedback-bot") / "classify"


def build_shipped(*, progress: bool = False, cache: bool = True) -> Classifier:
    """Train the shipped model from repository data; cache it if the cache is writable."""
    clf = train(shipped_examples(), load_taxonomy(), progress=progress)
    if cache:
        try:
            save_model(clf, _cache_dir())
        except OSError as exc:  # a read-only home is fine: the model just lives in memory
            log.info("cannot cache the shipped model: %s", exc)
    return clf


@lru_cache(maxsize=1)
def shipped_classifier() -> Classifier:
    """The model that ships with the project (cached on disk by content hash)."""
    version = data_version(shipped_examples(), load_taxonomy())
    cache = _cache_dir()
    if (cache / f"{version}.joblib").exists():
        try:
            return load_version(cache, version)
        except Exception as exc:  # a damaged cache file is rebuilt, not fatal
            log.warning("shipped model cache unreadable (%s); rebuilding", exc)
    return build_shipped()


class ClassifierHolder:
    """Gives the service the newest trained model without a restart."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime: float | None = None
        self._clf: Classifier | None = None

    def _stat(self) -> float | None:
        try:
            return (self.model_dir / "current").stat().st_mtime
        except OSError:
            return None

    def _reload(self, mtime: float | None) -> None:
        version = current_version(self.model_dir) if mtime is not None else None
        if version is None:
            self._clf = shipped_classifier()  # empty or missing dir: the shipped model
        elif self._clf is None or self._clf.version != version:
            try:
                self._clf = load_version(self.model_dir, version)
            except Exception:  # keep serving the old model; staff see the error in the log
                log.exception("cannot load model %s from %s", version, self.model_dir)
                self._clf = self._clf or shipped_classifier()
        self._mtime = mtime

    def get(self) -> Classifier:
        now = time.monotonic()
        if self._clf is not None and now - self._checked < CHECK_INTERVAL:
            return self._clf
        with self._lock:
            if self._clf is None or now - self._checked >= CHECK_INTERVAL:
                self._checked = now
                mtime = self._stat()
                if self._clf is None or mtime != self._mtime:
                    self._reload(mtime)
        assert self._clf is not None
        return self._clf
