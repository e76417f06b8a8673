"""The classifier as staff and the pipeline see it, on messages written for these tests
(not in the training corpus or the development set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.classify import Classifier, load_taxonomy, train

REPO = Path(__file__).resolve().parents[3]
BRIBE = "实名反映：我们街道派出所一个副所长，去年帮人把打架的案子压下来，收了对方两万块钱，还天天开着所里的车接送孩子。"
AD = "【优惠】专业代开各类发票，点数低，可验证后付款，加微信 fp6688 详谈，长期有效。"
OFFICIAL_AD = (
    "关于举办全市政法干部依法履职能力提升专题培训班的通知\n各有关单位：经研究决定举办专题培训，"
    "每人收取培训费5200元，颁发结业证书，名额有限，报名从速。联系人：孙老师\n某某培训中心"
)
LOAN_SHARK = "我被放高利贷的人威胁了，他们天天堵我家门口泼油漆，说不还钱就打断我的腿，报警后派出所说是经济纠纷不管，请你们帮帮我。"


def test_result_is_complete_and_consistent(shipped: Classifier) -> None:
    c = shipped.classify(
        "执行款拿不到", "判决生效两年了，对方转移财产，执行局一直说没有可供执行的财产。"
    )
    assert c.category == "6" and c.measure is not None and c.measure.startswith("6.")
    assert len(c.top) == 3 and c.top[0][0] == c.category
    assert sum(score for _, score in c.top) <= 1.0 + 1e-9
    assert 0 < c.confidence <= 1 and c.confidence == pytest.approx(c.top[0][1], abs=1e-3)
    assert c.model_version == shipped.version and c.taxonomy_version == load_taxonomy().version
    assert "第6类" in c.explanation and c.measure in c.explanation


def test_bribery_by_police_is_a_corruption_report(shipped: Classifier) -> None:
    c = shipped.classify("", BRIBE)
    assert (c.category, c.kind) == ("7", "report")


@pytest.mark.parametrize("text", [AD, OFFICIAL_AD])
def test_adverts_are_spam_even_in_official_wording(shipped: Classifier, text: str) -> None:
    subject, _, body = text.partition("\n")
    c = shipped.classify(subject, body)
    assert (c.category, c.kind, c.measure) == ("spam", "spam", None)


def test_a_complaint_about_a_loan_shark_is_not_spam(shipped: Classifier) -> None:
    c = shipped.classify("", LOAN_SHARK)
    assert c.category != "spam" and c.kind == "complaint"


# Short suggestions to open a WeChat channel: "加个微信" is also what adverts say, and a short
# "能…吗"-less request reads like a question, so the old model called them spam or inquiry.
@pytest.mark.parametrize("text", [
    "希望公证处能加个微信预约的入口",
    "希望调解中心能加个微信在线咨询",
    "希望派出所能在微信上办理户籍证明",
])
def test_a_short_request_for_a_wechat_channel_is_a_suggestion(shipped: Classifier,
                                                              text: str) -> None:
    c = shipped.classify("", text)
    assert (c.kind, c.category != "spam") == ("suggestion", True)


def test_traditional_characters_give_the_same_label(shipped: Classifier) -> None:
    simp = shipped.classify("", "请问关爱之家在哪里？我弟弟有精神病，想申请有人照顾。")
    trad = shipped.classify("", "請問關愛之家在哪裡？我弟弟有精神病，想申請有人照顧。")
    assert (simp.category, simp.measure, simp.kind) == (trad.category, trad.measure, trad.kind)
    assert (simp.category, simp.kind) == ("2", "inquiry")


def test_english_message_is_classified(shipped: Classifier) -> None:
    c = shipped.classify(
        "Question",
        "Where can my company find a lawyer for a foreign trade dispute? Is there a list of foreign-related lawyers?",
    )
    assert (c.category, c.measure, c.kind) == ("1", "1.11", "inquiry")


def test_typos_are_tolerated(shipped: Classifier) -> None:
    c = shipped.classify("", "小区们口的监空探头坏了大半年，电瓶车老被偷，雪亮工呈是摆设吗")
    assert (c.category, c.measure) == ("1", "1.12")


def test_off_topic_mail_is_other(shipped: Classifier) -> None:
    c = shipped.classify(
        "", "我们小区的物业把绿化带改成了停车位收费，业主都不同意，找了街道也没用。"
    )
    assert c.category == "other" and c.measure is None


def test_category_nine_measure_is_nine(shipped: Classifier) -> None:
    c = shipped.classify("", "教育整顿形成的81项长效制度，能不能把目录公布出来？")
    assert (c.category, c.measure) == ("9", "9")


def test_needs_review_uses_the_threshold_it_is_given(shipped: Classifier) -> None:
    c = shipped.classify("", "你好")
    assert c.needs_review(1.0) and not c.needs_review(0.0)
    assert c.needs_review(0.99) == (c.confidence < 0.99)


def test_classify_many_matches_one_by_one(shipped: Classifier) -> None:
    items = [("", BRIBE), ("", AD), ("", ""), ("主题", LOAN_SHARK)]
    assert shipped.classify_many(items) == [shipped.classify(s, b) for s, b in items]


def test_taxonomy_alone_is_enough_to_classify(taxonomy_only: Classifier) -> None:
    tax = load_taxonomy()
    c = taxonomy_only.classify(
        "", "建议把刑事诉讼涉案财物管理中心推广到每个区县，扣押的东西要有人管。"
    )
    assert c.category == "2" and c.measure == "2.10"
    assert c.kind in {"complaint", "suggestion", "report", "inquiry", "praise"}
    assert {lab for lab, _ in c.top} <= set(tax.labels)


def test_labelled_data_changes_the_model(
    taxonomy_only: Classifier, small_examples: list[dict]
) -> None:
    trained = train(small_examples, load_taxonomy())
    assert trained.version != taxonomy_only.version
    assert trained.classify("", AD).category == "spam"


TRAIN_AND_HASH = """
import hashlib, pickle
from handlers.classify import load_taxonomy, train
from handlers.classify.store import shipped_examples
clf = train(shipped_examples(with_dev=False)[::4], load_taxonomy())
print(clf.version, hashlib.sha256(pickle.dumps(clf)).hexdigest())
"""


def test_training_is_reproducible_bit_for_bit_across_processes() -> None:
    # Different hash seeds: set and dict ordering must not leak into the saved model.
    outputs = {
        subprocess.run(
            [sys.executable, "-c", TRAIN_AND_HASH],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


@pytest.mark.parametrize("name", ["kind_short_eval.jsonl", "kind_long_eval.jsonl",
                                  "top1_eval.jsonl"])
def test_the_kind_letters_are_never_trained_on(name: str) -> None:
    """tests/data/kind_short_eval.jsonl and kind_long_eval.jsonl measure kind on short and on
    long letters (README); a letter of them in the training data would inflate that figure."""
    from handlers.classify.store import read_jsonl, shipped_examples

    trained = {(ex.get("subject") or "", ex["body"]) for ex in shipped_examples()}
    items = read_jsonl(REPO / "tests" / "data" / name)
    assert len(items) >= 120
    assert not [it["id"] for it in items if (it["subject"], it["body"]) in trained]


KIND_LONG_FLOOR = 0.89  # README: 90.8 % now; 87.5 % with the corpus before its long letters (c5001-)


def test_long_wandering_letters_get_their_kind(shipped: Classifier) -> None:
    """tests/data/kind_long_eval.jsonl: 120 long letters (350-1,200 characters) written before
    the corpus's long letters, never trained on. The corpus then held few long complaints, so
    a complaint that ends in a polite question, a hope or thanks read as an inquiry, a
    suggestion or praise. Spam precision is held too: no citizen's letter is filed as spam."""
    from handlers.classify.store import read_jsonl

    items = read_jsonl(REPO / "tests" / "data" / "kind_long_eval.jsonl")
    got = shipped.classify_many([(it["subject"], it["body"]) for it in items])
    right = sum(c.kind == it["kind"] for it, c in zip(items, got, strict=True))
    assert right / len(items) >= KIND_LONG_FLOOR, f"{right} of {len(items)}"
    assert not [it["id"] for it, c in zip(items, got, strict=True)
                if c.category == "spam" and it["category"] != "spam"]


TOP1_FLOOR = 0.94  # README: 95.0 % now (95.5 % before S22); 92.0 % with the corpus before c7001-


def test_category_boundaries_hold_on_fresh_letters(shipped: Classifier) -> None:
    """tests/data/top1_eval.jsonl: 199 letters (120 short, 79 long) written for the category
    boundaries before any tuning and never trained on: off-topic letters that name a court or
    the police, letters quoting another category's measure, English and 繁體. A letter counts
    when its category is the label or one of its ``also``; no citizen's letter is spam."""
    from handlers.classify.store import read_jsonl

    items = read_jsonl(REPO / "tests" / "data" / "top1_eval.jsonl")
    got = shipped.classify_many([(it["subject"], it["body"]) for it in items])
    right = sum(c.category in {it["category"], *it["also"]}
                for it, c in zip(items, got, strict=True))
    assert right / len(items) >= TOP1_FLOOR, f"{right} of {len(items)}"
    assert not [it["id"] for it, c in zip(items, got, strict=True)
                if c.category == "spam" and it["category"] != "spam"]
