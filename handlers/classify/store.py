"""Saving, loading and hot-swapping trained classifiers.

A model directory holds, per version, ``<version>.joblib`` (the fitted Classifier),
``<version>.scorer.npz`` (the same model exported for prediction with numpy alone, see
``scorer.py``), ``<version>.json`` (metadata: scikit-learn version, taxonomy) and
``<version>.examples.jsonl`` (its training data), plus a one-line ``current`` file naming the
version in use. ``feedback-bot train`` writes a new version and then replaces ``current``
atomically; ``ClassifierHolder`` in the running service notices the new mtime (checked at most
every 10 s) and loads its scorer, so no restart is needed and the service never imports
scikit-learn or scipy. A version saved by an older release has no scorer file: the holder
loads the Classifier once, exports it and writes the file. A pickle is only trusted under the
scikit-learn version that wrote it; under another one the model is retrained from the saved
examples, which gives the same model because training is deterministic.

The shipped model (taxonomy + the project's corpus + the development set) is not committed as
a binary: it is trained on first use and cached under a content hash, so
``feedback-bot train`` without ``--config`` rebuilds exactly the same thing; its scorer is
cached beside it and found by the same hash without importing scikit-learn.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .scorer import Scorer
from .taxonomy import Taxonomy, load_taxonomy
from .version import data_version

if TYPE_CHECKING:
    from .model import Classifier

# The Classifier (scikit-learn, joblib) is imported inside the functions that need it: the
# service only loads scorers, and this module must not pull scikit-learn into its process.

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
CORPUS = DATA_DIR / "corpus.jsonl"
DEV_COPY = DATA_DIR / "dev.jsonl"
CHECK_INTERVAL = 10.0  # seconds between looks at the model dir's ``current`` file
KEEP_VERSIONS = 3  # a model is ~4 MB and its scorer ~5 MB; older versions are deleted on save
SUFFIXES = (".joblib", ".scorer.npz", ".examples.jsonl", ".json")  # the files of a version


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def shipped_examples(*, with_dev: bool = True) -> list[dict]:
    """Labelled data in the repository: our corpus, plus the development set by default."""
    examples = read_jsonl(CORPUS)
    return examples + read_jsonl(DEV_COPY) if with_dev else examples


def examples_for(tax: Taxonomy, examples: list[dict]) -> list[dict]:
    """``examples`` as they can teach a model of ``tax``.

    A category number means something only under the report it was chosen from: "3" of the
    2021 report is not "3" of a later one. An example labelled under another taxonomy (its
    ``taxonomy_version``; the repository's data, which has none, under the shipped report's)
    keeps its kind, which does not depend on the report, and loses its category and measure.
    Its spam label too: with the other letters' categories gone, the spam examples would be
    the only citizen-written text the category model sees, and it learned "written by a
    citizen" as spam (a trial with a three-category report called 5 of 7 genuine letters spam).
    The category model of another report is thus the report's own, as with ``--taxonomy-only``.
    Staff labels of unknown version (``taxonomy_version`` None) are kept as they are: staff
    chose them from the configured report."""
    shipped = load_taxonomy().version
    out = []
    for ex in examples:
        version = ex.get("taxonomy_version", shipped)
        if version is None or version == tax.version or ex.get("category") is None:
            out.append(ex)
        else:
            out.append({**ex, "category": None, "measure": None})
    return out


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
        for suffix in SUFFIXES:
            (model_dir / f"{version}{suffix}").unlink(missing_ok=True)


def scorer_path(model_dir: Path, version: str) -> Path:
    return model_dir / f"{version}.scorer.npz"


def _write_scorer(scorer: Scorer, path: Path) -> None:
    _atomic_write(path, scorer.to_bytes())


def save_model(clf: Classifier, model_dir: Path) -> str:
    """Write ``clf`` and its scorer into ``model_dir`` and make it current; returns its
    version."""
    import joblib
    import sklearn

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
    _write_scorer(Scorer.from_classifier(clf), scorer_path(model_dir, v))
    _atomic_write(model_dir / "current", f"{v}\n".encode())
    _prune(model_dir, v)
    return v


def load_version(model_dir: Path, version: str) -> Classifier:
    """Load one saved version, retraining it if scikit-learn changed since it was saved."""
    import joblib
    import sklearn

    from .model import train

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


def _in_another_process(statement: str) -> None:
    """Run ``statement`` in a new interpreter, unless this one has scikit-learn already.

    The one-off work that needs scikit-learn (training the shipped model on a first run,
    exporting the scorer of a model saved by an older release) would otherwise leave it in the
    process that only wanted to predict, 95 MB it keeps until it exits: in ``serve``'s prepare
    process that broke the memory budget on every first run. The caller then reads the file the
    new interpreter wrote, and does the work itself if there is none (failures are logged)."""
    if "sklearn" in sys.modules:
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    try:
        subprocess.run([sys.executable, "-c", statement], env=env, check=True, timeout=600,
                       capture_output=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("classifier: %s in another process failed (%s); doing it here",
                    statement, exc)


def export_scorer(model_dir: str, version: str) -> None:
    """Write the scorer file of a saved version (run by :func:`load_scorer`'s helper)."""
    _write_scorer(Scorer.from_classifier(load_version(Path(model_dir), version)),
                  scorer_path(Path(model_dir), version))


def _try_load(path: Path) -> Scorer | None:
    try:
        return Scorer.load(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or older file is rebuilt from the model
        log.warning("scorer file %s unusable (%s); exporting it again", path, exc)
        return None


def load_scorer(model_dir: Path, version: str) -> Scorer:
    """The scorer of one saved version. A version saved before scorers existed (or by a
    release with another scorer format) has its Classifier loaded and exported once, in
    another process, and the file written for next time."""
    path = scorer_path(model_dir, version)
    scorer = _try_load(path)
    if scorer is not None:
        return scorer
    log.info("model %s has no usable scorer file; exporting it", version)
    _in_another_process("from handlers.classify.store import export_scorer; "
                        f"export_scorer({str(model_dir)!r}, {version!r})")
    scorer = _try_load(path)
    if scorer is not None:
        return scorer
    scorer = Scorer.from_classifier(load_version(model_dir, version))
    try:
        _write_scorer(scorer, path)
    except OSError as exc:  # a read-only model dir: the scorer just lives in memory
        log.info("cannot write %s: %s", path, exc)
    return scorer


def current_version(model_dir: Path) -> str | None:
    try:
        return (model_dir / "current").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _cache_dir() -> Path:
    base = os.environ.get("FEEDBACK_BOT_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root if os.environ.get("FEEDBACK_BOT_CACHE") else root / "feedback-bot") / "classify"


def _base(report: Path | None) -> tuple[list[dict], Taxonomy]:
    """What the model of a report is trained from before staff label anything: the report's
    taxonomy and the repository's data as it applies to it (see :func:`examples_for`)."""
    tax = load_taxonomy(report)
    return examples_for(tax, shipped_examples()), tax


def build_shipped(*, progress: bool = False, cache: bool = True,
                  report: Path | str | None = None) -> Classifier:
    """Train the shipped model (of ``report``; None: the shipped report) from repository data;
    cache it if the cache is writable."""
    from .model import train

    clf = train(*_base(Path(report) if report else None), progress=progress)
    if cache:
        try:
            save_model(clf, _cache_dir())
        except OSError as exc:  # a read-only home is fine: the model just lives in memory
            log.info("cannot cache the shipped model: %s", exc)
    return clf


@lru_cache(maxsize=4)
def shipped_classifier(report: Path | None = None) -> Classifier:
    """The model that ships with the project, for ``report`` (None: the shipped report);
    cached on disk by content hash."""
    version = data_version(*_base(report))
    cache = _cache_dir()
    if (cache / f"{version}.joblib").exists():
        try:
            return load_version(cache, version)
        except Exception as exc:  # a damaged cache file is rebuilt, not fatal
            log.warning("shipped model cache unreadable (%s); rebuilding", exc)
    return build_shipped(report=report)


@lru_cache(maxsize=4)
def shipped_scorer(report: Path | None = None) -> Scorer:
    """The shipped model's scorer for ``report`` (None: the shipped report), from the cache by
    content hash: only the first run with that report (or one after the model's code or data
    changed) trains it, in another process. A new report thus takes effect on restart."""
    cache = _cache_dir()
    path = scorer_path(cache, data_version(*_base(report)))
    scorer = _try_load(path)
    if scorer is not None:
        return scorer
    _in_another_process("from handlers.classify.store import build_shipped; "
                        f"build_shipped(report={str(report.resolve()) if report else None!r})")
    scorer = _try_load(path)
    if scorer is not None:
        return scorer
    scorer = Scorer.from_classifier(shipped_classifier(report))
    try:
        _write_scorer(scorer, path)  # again if build_shipped just wrote it: a few ms
    except OSError as exc:
        log.info("cannot cache the shipped scorer: %s", exc)
    return scorer


def trained_for(model_dir: Path, version: str) -> str | None:
    """The taxonomy version a saved model was trained for (from its metadata), or None."""
    try:
        meta = json.loads((model_dir / f"{version}.json").read_text(encoding="utf-8"))
        return str(meta["taxonomy"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ClassifierHolder:
    """Gives the service the newest trained model, as a ``Scorer``, without a restart.

    The models in the model directory were trained for some report. One trained for another
    report than the configured one (``report``; None: the shipped copy) is not used: its
    category numbers mean that report's categories. Until ``feedback-bot train`` trains one for
    the configured report, the shipped model of the configured report serves."""

    def __init__(self, model_dir: Path, report: Path | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.report = report
        self._taxonomy: str | None = None  # the configured report's version, read once
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime: float | None = None
        self._scorer: Scorer | None = None

    def _fits(self, version: str) -> bool:
        if self._taxonomy is None:
            self._taxonomy = load_taxonomy(self.report).version
        made_for = trained_for(self.model_dir, version)
        if made_for is None or made_for == self._taxonomy:
            return True  # unreadable metadata: loading the model says what is wrong
        log.warning("model %s in %s was trained for taxonomy %s, not the configured report's %s;"
                    " using the shipped model for this report until `feedback-bot train`",
                    version, self.model_dir, made_for, self._taxonomy)
        return False

    def _stat(self) -> float | None:
        try:
            return (self.model_dir / "current").stat().st_mtime
        except OSError:
            return None

    def _reload(self, mtime: float | None) -> None:
        version = current_version(self.model_dir) if mtime is not None else None
        if version is not None and not self._fits(version):
            version = None
        if version is None:  # empty or missing dir, or a model of another report
            self._scorer = shipped_scorer(self.report)
        elif self._scorer is None or self._scorer.version != version:
            try:
                self._scorer = load_scorer(self.model_dir, version)
            except Exception:  # keep serving the old model; staff see the error in the log
                log.exception("cannot load model %s from %s", version, self.model_dir)
                self._scorer = self._scorer or shipped_scorer(self.report)
        self._mtime = mtime

    def get(self) -> Scorer:
        now = time.monotonic()
        if self._scorer is not None and now - self._checked < CHECK_INTERVAL:
            return self._scorer
        with self._lock:
            if self._scorer is None or now - self._checked >= CHECK_INTERVAL:
                self._checked = now
                mtime = self._stat()
                if self._scorer is None or mtime != self._mtime:
                    self._reload(mtime)
        assert self._scorer is not None
        return self._scorer
