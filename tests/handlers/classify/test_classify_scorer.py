"""The numpy-only Scorer the service classifies with: the same answers as the scikit-learn
Classifier it is exported from, saved and loaded without pickle, and a process that uses it
never loads scipy or scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handlers.classify import (
    Classification,
    Classifier,
    Scorer,
    load_taxonomy,
    save_model,
    shipped_scorer,
    train,
)
from handlers.classify.store import DEV_COPY, read_jsonl

REPO = Path(__file__).resolve().parents[3]
# The development set: a copy of /work/shared/data/feedback_dev.jsonl kept in the repository.
DEV = [(it.get("subject") or "", it.get("body") or "") for it in read_jsonl(DEV_COPY)]
EDGE = [
    ("", ""),
    ("派出所窗口", ""),
    ("", " \n\t "),
    ("Complaint", "The police station kept us waiting for hours and nobody answered the phone."),
    ("", "Thanks to the court, my case was finally enforced!"),
    ("", "請問關愛之家在哪裡？我弟弟有精神病，想申請有人照顧。"),
    ("", "法院執行局對老賴沒辦法，判決書成了白條"),
    ("", ("派出所办事窗口态度很差，排队两个小时没人管。" * 1000)[:20000]),
    ("😡😡", "🙏 派出所 👮‍♂️ 态度太差了 💢💢 😀"),
    ("", "😀😀😀"),
    ("", "加微信 fp6688 领取免费奖品，点击链接 http://x.example.com 马上到账"),
    ("", "１２３４５６７８９０ ＡＢＣ 全角字符的投诉：网上信访回复太慢"),
]


def _same(ours: list[Classification], theirs: list[Classification]) -> None:
    """Every label, explanation and version equal; a confidence or top-3 score may differ
    by one step of its 4-decimal rounding (float noise), no more."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.category, a.measure, a.kind, a.explanation) == (
            b.category, b.measure, b.kind, b.explanation)  # fmt: skip
        assert (a.model_version, a.taxonomy_version) == (b.model_version, b.taxonomy_version)
        assert [c for c, _ in a.top] == [c for c, _ in b.top]
        assert a.confidence == pytest.approx(b.confidence, abs=1.0001e-4)
        assert [s for _, s in a.top] == pytest.approx([s for _, s in b.top], abs=1.0001e-4)
        # The restriction of a 举报 is decided alike: the same cue, the same report probability.
        assert a.report_cue == b.report_cue
        assert a.report_prob == pytest.approx(b.report_prob, abs=1.0001e-4)
        assert a.restriction() == b.restriction()


@pytest.fixture(scope="module")
def scorer(shipped: Classifier) -> Scorer:
    return shipped_scorer()  # what the service loads: the cached file, not an export


def test_scorer_agrees_with_the_classifier_on_the_development_set(shipped, scorer) -> None:
    assert scorer.version == shipped.version
    assert scorer.taxonomy.version == shipped.taxonomy.version
    _same(scorer.classify_many(DEV), shipped.classify_many(DEV))


@pytest.mark.parametrize("model", ["shipped", "taxonomy_only"])  # calibrated, and plain LR
def test_scorer_agrees_on_edge_inputs(model: str, request: pytest.FixtureRequest) -> None:
    clf: Classifier = request.getfixturevalue(model)
    ours = Scorer.from_classifier(clf)
    _same(ours.classify_many(EDGE), clf.classify_many(EDGE))
    _same([ours.classify(s, b) for s, b in EDGE], [clf.classify(s, b) for s, b in EDGE])


def test_a_message_is_classified_alike_alone_and_in_a_batch(scorer) -> None:
    batch = DEV[:20] + EDGE
    assert scorer.classify_many(batch) == [scorer.classify(s, b) for s, b in batch]
    assert scorer.classify_many([]) == []


def test_saved_and_loaded_scorer_agrees_with_the_one_in_memory(
    tmp_path: Path, small_examples: list[dict]
) -> None:
    clf = train(small_examples, load_taxonomy())
    ours = Scorer.from_classifier(clf)
    path = tmp_path / "model.scorer.npz"
    path.write_bytes(ours.to_bytes())
    loaded = Scorer.load(path)
    assert loaded.version == ours.version
    assert loaded.taxonomy.to_dict() == ours.taxonomy.to_dict()
    items = DEV + EDGE
    assert loaded.classify_many(items) == ours.classify_many(items)
    _same(loaded.classify_many(items), clf.classify_many(items))


class _Touch:
    """Unpickling this creates a file: the kind of code a model pickle can run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.path,))


def test_loading_a_scorer_file_runs_no_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    path = tmp_path / "evil.scorer.npz"
    np.savez(path, meta=np.array([_Touch(marker)], dtype=object))
    with pytest.raises(ValueError):
        Scorer.load(path)
    assert not marker.exists()


CLASSIFY_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from handlers.classify import ClassifierHolder
scorer = ClassifierHolder(Path(sys.argv[1])).get()
result = scorer.classify_many([("", body) for body in sys.argv[2:]])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "sklearn"})
print(json.dumps({"version": scorer.version, "heavy": heavy,
                  "labels": [[c.category, c.measure, c.kind] for c in result]}))
"""


@pytest.mark.parametrize("source", ["model dir", "shipped", "old model dir", "first run"])
def test_a_process_that_classifies_never_imports_scipy_or_sklearn(
    source: str, tmp_path: Path, small_examples: list[dict], shipped: Classifier
) -> None:
    """What the service's prepare processes rely on to stay small, also when the scorer file
    must first be made: for a model saved before scorers existed, and on the first run ever
    (no cached shipped model), that work is done in another process."""
    env = dict(os.environ)
    if source in ("model dir", "old model dir"):
        clf = train(small_examples, load_taxonomy())
        save_model(clf, tmp_path)
        if source == "old model dir":
            (tmp_path / f"{clf.version}.scorer.npz").unlink()
    elif source == "shipped":
        clf = shipped
        shipped_scorer()  # the cached scorer file exists, as after any earlier run
    else:
        clf = shipped
        env["FEEDBACK_BOT_CACHE"] = str(tmp_path / "empty-cache")
    letters = [body for _, body in DEV[:5]] + ["派出所办事窗口态度很差，排队两个小时没人管。"]
    out = subprocess.run(
        [sys.executable, "-c", CLASSIFY_IN_A_FRESH_PROCESS, str(tmp_path), *letters],
        cwd=REPO, capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    seen = json.loads(out.stdout)
    assert seen["heavy"] == []
    assert seen["version"] == clf.version
    expected = clf.classify_many([("", body) for body in letters])
    assert seen["labels"] == [[c.category, c.measure, c.kind] for c in expected]
    if source == "old model dir":  # exported once, for the next process
        assert (tmp_path / f"{clf.version}.scorer.npz").exists()
    if source == "first run":
        assert list((tmp_path / "empty-cache").rglob("*.scorer.npz"))  # cached for next time


def _pairs(hits: tuple[np.ndarray, np.ndarray], width: int) -> list[int]:
    return sorted((hits[0] * width + hits[1]).tolist())


def test_word_and_bigram_hits_are_those_of_the_joined_words(scorer) -> None:
    """The batch lookup (a bigram as the pair of its words' columns, from jieba's lists) finds
    the (row, column) pairs the string lookup of the joined words finds; a vocabulary with a
    bigram whose word is no feature falls back to the string lookup."""
    tokens = [scorer.norm.split(s, b)[1] for s, b in DEV + EDGE]
    joined = [" ".join(t) for t in tokens]
    width = len(scorer.word_names)
    fast = scorer._word_hits(tokens)
    assert scorer._bigram_keys is not None and len(fast[0]) > 10 * len(tokens)
    assert _pairs(fast, width) == _pairs(scorer._word_hits_by_string(joined), width)
    # Rename a word that starts a bigram: the bigram stays a feature, its word is none.
    word = next(w for w in scorer.word_names if " " in w).split()[0]
    gone = scorer.word_names.index(word)
    names = [f"{w}#" if w == word else w for w in scorer.word_names]
    odd = Scorer(**{f: getattr(scorer, f) for f in Scorer.__dataclass_fields__
                    if Scorer.__dataclass_fields__[f].init} | {"word_names": names})
    assert odd._bigram_keys is None
    expected = (fast[0][fast[1] != gone], fast[1][fast[1] != gone])
    assert _pairs(odd._word_hits(tokens), width) == _pairs(expected, width)
