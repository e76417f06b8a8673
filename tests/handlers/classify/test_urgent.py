"""Urgent letters (issue #19): the shipped model flags letters that put someone at risk today,
including those without the obvious alarm words, and does not fire on alarm words used
harmlessly. Every letter here is new material, in no training or eval file."""

from __future__ import annotations

import pytest

from handlers.classify import urgent

INDIRECT_URGENT = [
    "我把房子过户给了女儿，存款也都取出来给了她，后事我都安排好了，就是想让你们知道，"
    "我的案子到死都没人管。",
    "他刚才又喝多了，拿皮带抽我儿子，孩子在哭，我不敢出声，我们现在在家里。",
    "我们四十几户业主说定了，下周一早上一起去区政府门口拉横幅，开发商不交房就不走。",
    "我爸今天早上出门到现在一直没回家，他有痴呆，手机也没带。",
    "有辆货车现在正在我们村口偷倒建筑垃圾和废油，车还没开走，请赶快来人。",
    "那个放高利贷的说了，明天再不还钱就让我全家好看，我老婆孩子现在都不敢出门。",
    "I have nothing left after this lawsuit. Tonight I will end my life, please tell my son I am"
    " sorry.",
]

HARMLESS_ALARM = [
    "等了两个小时还没排到号，急死了，你们窗口能不能多开几个？",
    "今天看新闻，说外省有个老人因为执行款拿不到在法院门口喝了农药，太让人心酸了，"
    "希望南通不要出这种事。",
    "我在写一本网络小说，主角是个被冤枉的村民，最后从信访局的楼顶跳了下去，"
    "想问问现实中信访流程是什么样的。",
    "紧急通知！本店周年庆跳楼价大促，全场三折，仅限今天，加微信领券。",
    "三年前我因为离婚的事想过轻生，后来法院调解得很好，现在我和孩子过得很好，特地感谢。",
    "如果邻居家发生家暴，我们旁人报警以后需要出庭作证吗？",
    "这个月业绩压得我要死要活的，累死了，想问问劳动仲裁在哪里申请。",
]


@pytest.mark.parametrize("body", INDIRECT_URGENT)
def test_indirect_urgent_letters_are_flagged(shipped, body: str) -> None:
    c = shipped.classify("", body)
    assert c.urgent, (c.urgent_score, c.urgent_cues)
    assert c.category != "spam"
    assert c.urgent_reason().startswith("可能需要当天处理")
    assert all(k in {label for label, _ in urgent.CUE_GROUPS} for k in c.urgent_kinds())


@pytest.mark.parametrize("body", HARMLESS_ALARM)
def test_harmless_alarm_words_do_not_fire(shipped, body: str) -> None:
    c = shipped.classify("", body)
    assert not c.urgent, (c.urgent_score, c.urgent_cues)
    assert c.urgent_reason() == ""


def test_scorer_flags_what_the_classifier_flags(shipped) -> None:
    from handlers.classify.scorer import Scorer

    scorer = Scorer.from_classifier(shipped)
    items = [("", b) for b in INDIRECT_URGENT + HARMLESS_ALARM]
    assert [(c.urgent, c.urgent_score, c.urgent_cues) for c in scorer.classify_many(items)] == [
        (c.urgent, c.urgent_score, c.urgent_cues) for c in shipped.classify_many(items)
    ]


def test_cues_read_in_context() -> None:
    """A cue in a news, fiction or past sentence does not count; one in the present does."""
    assert urgent.live_cues("我现在就站在楼顶上。")
    assert not urgent.live_cues("新闻说有人站在楼顶上。")
    assert not urgent.live_cues("去年我想不开过,后来好了。")
    assert urgent.live_cues("去年就判了,我明天去法院门口喝农药。")
    assert not urgent.live_cues("我不会跳楼的,放心。")
    assert not urgent.live_cues("清仓跳楼价。")


def test_spam_is_never_urgent() -> None:
    assert not urgent.decide(0.99, ("轻生：跳楼",), spam=True).urgent
