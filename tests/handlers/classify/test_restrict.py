"""The restriction decision (handlers/classify/restrict.py) through the shipped model, on
letters the project has never trained on: tests/data/restrict_eval.jsonl (65 举报 of every
shape, 66 other letters that name officials, written for this check and kept out of the
corpus), and tests/data/restrict_blind.jsonl (100 举报 and 100 other letters written blind, by a
writer who saw neither the cues, the model nor any of the project's letters; the default
threshold was chosen on it, once). The target of issue #15: at least 95 % of 举报 restricted, at
most 25 % of the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.classify import Classifier
from handlers.classify.evaluate import predict, score
from handlers.classify.restrict import DEFAULT_THRESHOLD, cue, decide
from handlers.classify.store import shipped_examples

DATA = Path(__file__).resolve().parents[2] / "data"
EVAL = DATA / "restrict_eval.jsonl"
BLIND = DATA / "restrict_blind.jsonl"


def _eval_items(path: Path = EVAL) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_evaluation_letters_are_never_trained_on() -> None:
    trained = {(ex.get("subject") or "", ex["body"]) for ex in shipped_examples()}
    for path in (EVAL, BLIND):
        items = _eval_items(path)
        assert sum(it["kind"] == "report" for it in items) >= 60
        assert sum(it["kind"] != "report" for it in items) >= 60
        assert not [it["id"] for it in items if (it["subject"], it["body"]) in trained]


def test_restriction_meets_the_target_on_letters_written_blind(shipped: Classifier) -> None:
    items = _eval_items(BLIND)
    results = shipped.classify_many([(it["subject"], it["body"]) for it in items])
    decided = [decide(kind=r.kind, report_prob=r.report_prob, report_cue=r.report_cue).restricted
               for r in results]
    reports = [d for it, d in zip(items, decided, strict=True) if it["kind"] == "report"]
    others = [d for it, d in zip(items, decided, strict=True) if it["kind"] != "report"]
    assert sum(reports) / len(reports) >= 0.95
    assert sum(others) / len(others) <= 0.25


def test_restriction_meets_the_target_on_unseen_letters(shipped: Classifier) -> None:
    items = _eval_items()
    scores = score(items, predict(shipped, items), shipped.taxonomy.labels,
                   restrict_threshold=DEFAULT_THRESHOLD)
    assert scores.reports_n == 65
    assert scores.restricted_others <= 0.25
    assert scores.restricted_recall >= 0.95


def test_the_writer_and_the_kind_restrict_whatever_the_scores() -> None:
    assert decide(writer=True).by == "writer"
    assert decide(kind="report").restricted
    assert decide(report_prob=DEFAULT_THRESHOLD).restricted
    assert not decide(kind="complaint", report_prob=DEFAULT_THRESHOLD / 2).restricted
    assert decide(report_cue="保护伞").by == "classifier"


@pytest.mark.parametrize("text", [
    "实名举报某所长", "请为我保密", "村里有人当保护伞", "他收了钱才给办", "办事要先交“加急费”",
    "副所长的小舅子开的公司", "送了两万块才立案", "officer asked for a bribe",
])
def test_cues_are_found(text: str) -> None:
    assert cue(text.lower(), text.lower())


@pytest.mark.parametrize("text", [
    "派出所办身份证太慢了", "感谢李警官帮我找回电动车", "请问法院立案需要什么材料",
])
def test_plain_letters_have_no_cue(text: str) -> None:
    assert cue(text) is None


REPORT_KIND_FLOOR = 0.84  # README: 56 of 65 now and before c7001-; 53 with c7001-c7195 alone


def test_a_report_that_also_complains_is_read_as_a_report(shipped: Classifier) -> None:
    """restrict_eval's 65 举报 accuse an identifiable official or unit, many in a complaint's
    words (a leader's relative runs the canteen, "the food is dear and bad"). Their kind must
    stay report: it is what staff read first and what the restriction falls back on when no
    cue is found. Corpus letters that told 辅警 misconduct as a plain complaint pulled several
    of them to complaint."""
    items = [it for it in _eval_items() if it["kind"] == "report"]
    got = shipped.classify_many([(it["subject"], it["body"]) for it in items])
    right = sum(c.kind == "report" for c in got)
    assert right / len(items) >= REPORT_KIND_FLOOR, f"{right} of {len(items)}"
