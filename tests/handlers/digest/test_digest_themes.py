"""Themes a leader can trust (handlers/digest/themes.py): on a realistic week, each campaign is
one theme holding all its letters and nothing else, and letters that merely share a category
or a few words do not chain into one giant theme."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta

from handlers.classify.store import CORPUS
from handlers.digest.lead import Theme, themes
from handlers.repeats import DEFAULT_NGRAM, DEFAULT_THRESHOLD
from storage.digests import WeekRow
from tests.handlers.digest.test_digest_build import local

# Campaigns written for this test: the letter, and rewordings by other citizens.
CAMPAIGNS = {
    "water": ("东湖花园小区自来水从上周三开始发黄发臭，烧开了还有一层浮沫，物业说是二次供水水箱三年没清洗，"
              "自来水公司和物业互相推，几百户居民只能买桶装水，请督促有关部门尽快清洗水箱、检测水质。",
              ["东湖花园小区的自来水发黄有臭味一个多星期了，二次供水水箱几年没洗，物业和自来水公司互相推，"
               "我们只能买桶装水，请尽快清洗水箱、检测水质。"]),
    "bus": ("听说58路公交要取消经过青石村的线路，村里老人看病、孩子上学全靠这趟车，取消以后要走四公里"
            "才能坐车，请交通部门保留58路青石村站点。", ["请保留58路公交青石村站点，取消后村里老人孩子要走四公里坐车。"]),
    "wage": ("我们是在城北物流园干活的农民工，包工头拖欠我们三个月工资一共四十多万，劳动监察去过一次就没下文，"
             "快过年了大家回不了家，请政法委帮忙协调讨薪。", []),
}
NAMES = ("周文斌", "孙丽娟", "马国庆", "何晓燕", "郑海涛", "梁雪梅")


def _row(i: int, text: str, category: str) -> WeekRow:
    return WeekRow(id=i, tracking_no=f"FK{i:08d}", received_at=local(16) + timedelta(minutes=i),
                   channel="web", category=category, measure=None, status="new", subject="",
                   text=text, new_text=None, from_name=None, confidence=None, restricted=False)


def _copies(base: str, n: int, rng: random.Random) -> list[str]:
    """``n`` near-copies of ``base``, each signed in its own way (name, phone, door number)."""
    out = []
    for i in range(n):
        name, phone = rng.choice(NAMES), f"1{rng.randint(3, 9)}{rng.randint(10**8, 10**9 - 1)}"
        out.append((base, f"我是{name}，手机{phone}。{base}",
                    f"{base}联系人{name}，电话{phone}，住{rng.randint(1, 30)}栋{rng.randint(101, 1802)}室。")
                   [i % 3])
    return out


def _corpus() -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            e = json.loads(line)
            seen.setdefault(e["body"], str(e["category"]))
    return list(seen.items())


def _themes(rows: list[WeekRow], links: list[tuple[int, int]] | None = None) -> list[Theme]:
    return themes(rows, links or [], str, threshold=DEFAULT_THRESHOLD, ngram=DEFAULT_NGRAM,
                  limit=10_000)


def test_each_planted_campaign_is_one_theme_of_its_own_letters_in_a_week_of_distinct_ones(
) -> None:
    rng = random.Random(20)
    letters = [(text, cat, None) for text, cat in _corpus()]
    for key, (base, rewordings) in CAMPAIGNS.items():
        letters += [(t, "6", key) for t in _copies(base, {"water": 30, "bus": 9, "wage": 5}[key],
                                                   rng) + rewordings]
    rng.shuffle(letters)
    rows = [_row(i, text, cat) for i, (text, cat, _k) in enumerate(letters, 1)]
    planted = {r.tracking_no: key for r, (_t, _c, key) in zip(rows, letters, strict=True)}
    found = _themes(rows)
    by_key = {key: [t for t in found if planted[t.tracking_nos[0]] == key] for key in CAMPAIGNS}
    for key in CAMPAIGNS:
        want = sum(1 for _t, _c, k in letters if k == key)
        assert [t.size for t in by_key[key]] == [want], key  # one theme, every letter in it
        assert all(planted[n] == key for n in by_key[key][0].tracking_nos)  # the first five
    assert [planted[t.tracking_nos[0]] for t in found[:2]] == ["water", "bus"]
    # No giant: the other themes are small groups (the same question asked by a few people).
    others = [t for t in found if planted[t.tracking_nos[0]] is None]
    assert max(t.size for t in others) <= 15
    assert sum(t.size for t in others) < len(rows) / 2


def test_letters_of_one_category_that_share_words_do_not_chain_into_one_theme() -> None:
    # The corpus's large categories: hundreds of distinct letters about the same institutions,
    # many pairs alike at the repeat threshold; linked pairwise they chained into components of
    # 17 to 36 letters per category, 226 in the whole corpus. A theme here is a question a few
    # people asked (无犯罪记录证明怎么开), never a category.
    corpus = _corpus()
    sizes = {}
    for category, n in Counter(c for _t, c in corpus).items():
        if n >= 200:
            rows = [_row(i, text, c) for i, (text, c) in enumerate(corpus, 1) if c == category]
            sizes[category] = _themes(rows)[0].size
    sizes["all"] = _themes([_row(i, t, c) for i, (t, c) in enumerate(corpus, 1)])[0].size
    assert len(sizes) >= 4 and max(sizes.values()) <= 10, sizes


def test_a_link_made_at_intake_joins_the_theme_it_points_at_but_does_not_chain() -> None:
    # Three letters on unrelated matters, each linked at intake to the one before (the same
    # writer): the second joins the first's theme, the third is not pulled in through it.
    rows = [_row(1, "小区东门的路灯坏了三个月，晚上老人孩子出门不安全，请尽快修好。", "6"),
            _row(2, "我上次说的事还没人回复，另外想问一下户籍窗口周六上不上班。", "1"),
            _row(3, "法院执行的钱什么时候能打到账上，执行法官一直不接电话。", "3")]
    found = _themes(rows, [(2, 1), (3, 2)])
    assert [(t.size, t.tracking_nos) for t in found] == [(2, ["FK00000001", "FK00000002"])]
