"""The letter's structure (structure.py) and what the kind model makes of it: a long letter is
judged by what it asks for, not by the story it tells first.

The model learns this from long letters that ask or thank after a story; the corpus of this
branch has none (its longest letter has 250 characters), and the inquiry and praise tests below
pass once the 220 + 220 newer letters (which have 100 such) are in it. Trained on this corpus
alone the model still calls these letters complaints."""

from __future__ import annotations

import pytest

from handlers.classify import Classifier
from handlers.classify.structure import structure
from handlers.classify.text import Normaliser

# Letters written for these tests (in no corpus or evaluation set): a long story of a problem,
# then one clear request at the end.
STORY = (
    "我家住在城郊的一个老小区，楼下有一家汽修店，去年开始把修车的摊子摆到了人行道上，"
    "每天从早到晚敲敲打打，油污流得满地都是，下雨天一冲全进了小区的下水道。店主还在门口"
    "堆了几十个旧轮胎，夏天招蚊子，孩子们放学只能绕到马路中间走。我们先后找过物业、社区和"
    "城管，物业说门面不归他们管，社区说已经上报，城管来过两次，贴了一张整改通知，第二天"
    "通知就被撕了。今年春天有个老人在轮胎堆旁边滑倒，摔断了手腕，店主说是老人自己不小心。"
    "这件事拖了一年多，邻居们都很无奈，有人说再这样下去只能自己想办法。"
)
ASKS = [
    STORY + "我想请问一下，像这种占用人行道经营的情况，到底应该由哪个部门负责处理？"
    "如果城管的整改通知没有用，我们居民还能通过什么途径反映？",
    STORY + "请问摔伤的老人能不能向店主要求赔偿？需要先去派出所报案，还是直接去法院起诉？"
    "要准备哪些材料？",
]
THANKS = [
    STORY + "上个月我抱着试试看的心态在网上留言，没想到第三天街道和城管就一起来了，店主"
    "把摊子收回了店里，轮胎也拉走了，人行道冲洗得干干净净。在此真诚感谢街道和城管的同志，"
    "谢谢你们为我们老百姓办了一件实事！",
    STORY + "后来派出所的社区民警知道了这件事，主动上门调解，帮老人拿到了医药费，又陪着"
    "城管一起督促店主把摊子搬走。我们全体居民都很感激，特地写信感谢这位民警，向他致敬！",
]


@pytest.mark.parametrize("body", ASKS)
def test_a_long_story_that_ends_in_a_question_is_an_inquiry(shipped: Classifier,
                                                             body: str) -> None:
    assert shipped.classify("", body).kind == "inquiry"


@pytest.mark.parametrize("body", THANKS)
def test_a_long_story_that_ends_in_thanks_is_praise(shipped: Classifier, body: str) -> None:
    assert shipped.classify("", body).kind == "praise"


def test_the_story_alone_stays_a_complaint(shipped: Classifier) -> None:
    assert shipped.classify("", STORY).kind == "complaint"


def _structure(subject: str, body: str) -> list[str]:
    _, words = Normaliser()(subject, body)
    return structure(words, bool(subject)).split()


def test_subject_closing_and_questions_are_marked() -> None:
    toks = _structure("关于执行款", "领导：\n您好！我借给邻居五万元钱，法院早就判了。"
                      "到现在一分钱也没有执行到位，我已经跑了很多趟。请问我该怎么办？\n此致\n敬礼")
    assert "s:关于" in toks and "e:关于" not in toks  # the subject
    assert "e:请问" in toks and "e:跑" not in toks  # the last sentence with content
    assert "e:借给" not in toks and "e:敬礼" not in toks  # the story's start; the sign-off
    assert "q:请问" in toks and "#q@end" in toks  # a question, and it ends the letter


def test_a_question_mark_ends_a_sentence_within_a_line() -> None:
    toks = _structure("", "这个证明去哪里开？我上周去了派出所，窗口说不归他们管，让我回去等通知。")
    assert "q:证明" in toks and "q:派出所" not in toks


def test_character_text_and_words_are_what_they_were_before_sentences_were_kept() -> None:
    norm = Normaliser()
    chars, words = norm("主题", "第一行。\n\n  第二行！第三行；第四行……完？")
    assert chars == "主题 第一行。 第二行!第三行;第四行......完?"
    # A sentence's end is a word boundary, as a space is; only the line breaks are new.
    assert words.split() == norm("", "主题 第一行 第二行 第三行 第四行 完?")[1].split()
    lines = [line.split() for line in words.split("\n") if line.strip()]  # what structure reads
    assert lines == [["主题"], ["第一行"], ["第二行"], ["第三行"], ["第四行"], ["完", "?"]]
