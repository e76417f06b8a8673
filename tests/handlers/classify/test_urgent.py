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


# Indirect warning signs (issue #19, second round): each letter says it without an alarm word.
# (kind of risk expected among the letter's reasons, letter)
INDIRECT_SIGNS = [
    ("轻生", "工资卡我放在电视柜的信封里了，密码是我女儿的生日。家里的鹦鹉送给了对门的小刘。"
             "官司的事我不争了。"),
    ("轻生", "我又割手臂了，这次割得更深，爸妈只顾着吵架。"),
    ("轻生", "我公公九十岁了，这几天不肯吃药也不肯吃饭，说活够了，不想再连累我们。"),
    ("聚集上访", "我们五十多户拆迁户约好了，下周三上午一起到区政府门口，人手一块牌子，不给补偿就不走。"),
    ("正在发生的犯罪", "我舅舅这会儿跟一个自称检察官的人开着视频，对方让他把养老钱转到安全账户，他不听我们的。"),
    ("正在发生的犯罪", "楼下有两个人在撬隔壁商铺的卷帘门，我在窗户后面看着，他们还没走。"),
    ("正在发生的危险", "我不方便接电话，他在门外听着。你们来了就说是送快递的，地址是永兴街道12号。"),
    ("正在发生的危险", "对面楼的小女孩五天没见大人回来了，晚上一直哭，屋里黑着灯。"),
    ("暴力威胁", "转告那个姓王的所长，叫他下班路上小心点，我知道他住哪个小区。"),
    ("暴力威胁", "明天我扛着液化气罐去镇政府，谁也别想好过。"),
    ("轻生", "By the time you read this I will have left. I gave my cat to a friend. Nobody listened "
             "about the case."),
    ("正在发生的危险", "My boss locked me up in the warehouse and kept my passport. I am writing from a "
                     "coworker's phone."),
]

# Harmless letters that use the same words: a move abroad, a road at night, a locksmith, anti-fraud
# news, an idiom, a gathering long past, a last reminder, a website that has crashed.
LOOK_ALIKES = [
    "我要去国外工作了，猫送给了朋友，房子也退了，请问出国期间我的案子能委托律师吗？",
    "小区路口没有路灯，天黑路滑，老人经常在那里摔跤，能不能装几盏灯？",
    "饭店门口堆着好几个煤气罐，很危险，希望有关部门查一查。",
    "锁匠上门撬锁开门收了五百块，这个价格合理吗？",
    "新闻说有老人被骗把钱转进安全账户，建议社区多做反诈宣传。",
    "I read in the news about a worker who was locked in a factory. Does Nantong inspect factories?",
    "家长群里炸了，都在说学区要调整，政法委能不能帮忙问问教育局？",
    "2016年我们全村集体去过镇政府反映征地补偿，后来都解决了。现在想问补偿款要不要交税。",
    "这是最后一次提醒物业修路灯了，再不修我就打12345。",
    "救命，网上缴费页面又白屏了，今天是最后期限！",
]


@pytest.mark.parametrize(("kind", "body"), INDIRECT_SIGNS)
def test_indirect_warning_signs_are_flagged(shipped, kind: str, body: str) -> None:
    c = shipped.classify("", body)
    assert c.urgent, (c.urgent_score, c.urgent_cues)
    assert kind in c.urgent_kinds(), c.urgent_cues


@pytest.mark.parametrize("body", LOOK_ALIKES)
def test_look_alikes_stay_calm(shipped, body: str) -> None:
    c = shipped.classify("", body)
    assert not c.urgent, (c.urgent_score, c.urgent_cues)


def test_indirect_cues_need_the_models_backing() -> None:
    """An indirect sign (a pet given away) is urgent only with the model behind it; a plain cue
    of self-harm needs less, alone twice its bar, and a letter with no cue needs the model
    alone."""
    text = "家里的狗送给邻居了,密码是我生日。"
    assert urgent.live_cues(text)
    assert not urgent.assess(urgent.INDIRECT_BAR - 0.01, text, text).urgent
    assert urgent.assess(urgent.INDIRECT_BAR, text, text).urgent
    assert urgent.assess(urgent.DOUBT * urgent.STRONG_BAR, "我明天去喝农药。", "").urgent
    # close to its bar a cue needs a second one beside it (DOUBT)
    assert not urgent.assess(urgent.STRONG_BAR, "我明天去喝农药。", "").urgent
    assert urgent.assess(urgent.STRONG_BAR, "遗书写好了,我明天去喝农药。", "").urgent
    assert not urgent.assess(urgent.MODEL_BAR - 0.01, "今天天气不错。", "").urgent


def test_a_past_year_or_a_visit_that_happened_is_not_a_plan() -> None:
    assert not urgent.live_cues("2015年我们全村集体去过区政府讨说法。")
    assert urgent.live_cues("我们全村约好了,下周一集体去区政府讨说法。")
    assert not urgent.live_cues("家长群里炸了,都在问学区。")
    assert urgent.live_cues("他说要把法院炸了。")


@pytest.mark.parametrize("text", [
    "The exit-entry window said a stamp was missing from my form, and right now I cannot renew "
    "my permit. Could you help me understand which office decides?",
    "The officer threatened to fine my company if the invoice was late. Is that lawful?",
    "I bought a kitchen knife set online and it never arrived.",
])
def test_everyday_english_is_no_cue(text: str) -> None:
    assert urgent.live_cues("", text) == ()


@pytest.mark.parametrize("text", [
    "My daughter has been missing since Tuesday night and the police say wait.",
    "He threatened to kill my mother and he has a knife in the car.",
    "My husband is beating me and the children are screaming for help.",
])
def test_english_danger_is_a_cue(text: str) -> None:
    assert urgent.live_cues("", text)


@pytest.mark.parametrize("text", [
    "前段时间小区里有个老太太在银行门口打电话，说警察让她转账，我上去拦住了。",
    "今年七月的一个晚上地下车库电动车起火，有个小孩手被烫了，物业到现在没有整改。",
    "派出所民警一路跟踪监控画面，当天就把偷手机的人抓住了，特此感谢。",
    "网上办是好事，但别把我们老年人关在门外，窗口排队的人现在还是很多。",
    "这两年他在外面有人了，我想问离婚时财产怎么分。",
    "退休以后每天傍晚去江边散步，现在路灯亮了，感谢街道。",
])
def test_a_danger_told_as_past_or_in_a_figure_of_speech_is_no_cue(text: str) -> None:
    assert urgent.live_cues(text) == ()


def _live_in(text: str) -> tuple[str, ...]:
    """The live cues of a letter read as the classifier reads it: normalised, with its words."""
    from handlers.classify.text import normaliser_for

    chars, words = normaliser_for(())("", text)
    return urgent.live_cues(chars, text, words=words)


@pytest.mark.parametrize("text", [
    # a cue inside an ordinary word
    "孩子周末淋了雨，晚上回家就发烧了，想问社区医院夜里有没有急诊。",
    # a business, a thing or an animal as the subject
    "我们那条街的几家饭馆都快撑不下去了，房租能不能缓一缓。",
    "小区停车棚里我的电瓶车又不见了，监控一直是坏的。",
    # a story told as background, its danger over later in the letter
    "前年冬天，我父亲出门买菜，结果一直没回来。\n全家找了一下午，最后在菜场门口找到了他。"
    "\n想问街道有没有给老人发定位手环。",
    # a relative held lawfully
    "我表弟因为打架被关在拘留所，家属能不能去送衣服？",
    # a hope that the authorities keep their word
    "整改的事我们都看着，希望你们说到做到。",
])
def test_an_alarm_word_about_a_thing_the_past_or_a_word_of_its_own_is_no_cue(text: str) -> None:
    assert _live_in(text) == ()


@pytest.mark.parametrize("text", [
    # the writer's own consequence after a condition is a threat
    "工钱拖了一年。要是明天再不给，我就一把火把他家房子烧了。",
    "他刚才又喝醉了，拿着刀在砸门，我和孩子躲在卫生间里。",
    "前年就判了，可到现在一分钱没给，我明天去法院门口喝农药。",
])
def test_a_live_danger_after_a_story_stays_a_cue(text: str) -> None:
    assert _live_in(text)


@pytest.mark.parametrize("text", [
    "这些年跑的上访材料，我昨晚一张张全撕了扔了，反正再也用不上了。你们赢了。",
    "判决书、收据都送人了，以后用不着了。",
])
def test_giving_up_on_ones_own_case_is_a_warning_sign(text: str) -> None:
    """Destroying one's own case papers "since they are no use now" is the crisis lines' giving
    up, even though what was destroyed is a thing (so the alarm word itself is no cue)."""
    assert any(kind.startswith("轻生") for kind in _live_in(text)), _live_in(text)


def _jsonl(name: str) -> list[dict]:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "tests" / "data" / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_long_calm_letters_with_alarm_words_stay_calm_and_urgent_ones_are_flagged(shipped) -> None:
    """tests/data/urgent_calm_eval.jsonl (120 long calm letters that use alarm words about a
    business, the past, a story, a hypothetical or a relative in custody, 60 urgent letters told
    the same wandering way; never trained on): precision 92.3 %, recall 100 % (the model before
    this: 70.6 %, 100 %). Issue #19's targets are 85 % and 95 %."""
    from handlers.classify.scorer import Scorer

    items = _jsonl("urgent_calm_eval.jsonl")
    got = Scorer.from_classifier(shipped).classify_many([(i["subject"], i["body"]) for i in items])
    flagged = [i for i, c in zip(items, got, strict=True) if c.urgent]
    true = sum(1 for i in flagged if i.get("urgent"))
    assert true / len(flagged) >= 0.90, [i["id"] for i in flagged if not i.get("urgent")]
    assert true / sum(1 for i in items if i.get("urgent")) >= 0.98


def test_other_writers_long_letters_raise_few_false_alarms(shipped) -> None:
    """kind_eval.jsonl and kind_long_eval.jsonl (194 long letters, none urgent, written by other
    writers for other measures): 3 flagged (15 before)."""
    items = _jsonl("kind_eval.jsonl") + _jsonl("kind_long_eval.jsonl")
    got = shipped.classify_many([(i["subject"], i["body"]) for i in items])
    assert sum(c.urgent for c in got) <= 3, [i["id"] for i, c in zip(items, got, strict=True) if c.urgent]
