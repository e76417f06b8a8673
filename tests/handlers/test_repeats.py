"""Repeat letters (handlers/repeats.py): one spelling of a writer's address and phone across
channels, and the near-duplicate index (what it compares, insert, remove, query)."""

from __future__ import annotations

import pickle

import pytest

from handlers.repeats import (
    RepeatIndex,
    address_key,
    jaccard,
    load_report_text,
    phone_key,
    sender_keys,
)


@pytest.mark.parametrize(("typed", "key"), [
    ("Zhou.Lixin@163.com", "zhou.lixin@163.com"),
    ("周先生 <ZHOU.LIXIN@163.COM>", "zhou.lixin@163.com"),
    ("ｚｈｏｕ．ｌｉｘｉｎ＠１６３．ｃｏｍ", "zhou.lixin@163.com"),  # typed full-width on a form
    (" 12345678@QQ.com ", "12345678@qq.com"),
    ("Li.Ming+feedback@gmail.com", "liming@gmail.com"),  # Gmail ignores dots and +tags
    ("liming@googlemail.com", "liming@gmail.com"),
    ("wang.fang+nt@outlook.com", "wang.fang@outlook.com"),  # Outlook.com: +tags, not dots
    ("user@例子.中国", "user@xn--fsqu00a.xn--fiqs8s"),
])
def test_address_key_folds_what_the_provider_folds(typed, key):
    assert address_key(typed) == key


def test_netease_and_qq_addresses_keep_their_dots_and_plus():
    # Two mailboxes of two people on 163.com; a '+' is no sub-address at NetEase or QQ.
    assert address_key("zhang.wei01@163.com") != address_key("zhangwei01@163.com")
    assert address_key("zhangwei+1@qq.com") == "zhangwei+1@qq.com"
    assert address_key("zhangwei+1@qq.com") != address_key("zhangwei@qq.com")


@pytest.mark.parametrize("junk", [None, "", "no address", "a@b", "@163.com", "a b@163.com",
                                  "x@@163.com"])
def test_address_key_of_no_address_is_none(junk):
    assert address_key(junk) is None


@pytest.mark.parametrize(("typed", "key"), [
    ("13912345678", "13912345678"),
    ("139-1234-5678", "13912345678"),
    ("139 1234 5678", "13912345678"),
    ("+86 139 1234 5678", "13912345678"),
    ("0086-13912345678", "13912345678"),
    ("8613912345678", "13912345678"),
    ("１３９１２３４５６７８", "13912345678"),  # full-width digits
    ("0513-85098289", "051385098289"),
    ("(0513) 8509 8289", "051385098289"),
    ("（0513）85098289转123", "051385098289"),  # the extension is not the line
    ("+86 513 85098289", "051385098289"),  # international form drops the trunk 0
    ("010-12345678", "01012345678"),
    ("+1 415 555 0100", "+14155550100"),
])
def test_phone_key_is_one_spelling(typed, key):
    assert phone_key(typed) == key


def test_a_number_without_area_code_takes_the_configured_one():
    assert phone_key("85098289", default_area="0513") == phone_key("0513-85098289")
    assert phone_key("85098289") == "85098289"


@pytest.mark.parametrize("junk", [None, "", "电话", "12345", "139123456789012345", "abc1391234"])
def test_phone_key_of_no_phone_is_none(junk):
    assert phone_key(junk) is None


def test_same_person_across_a_call_and_a_web_form():
    call = sender_keys(None, "+86 150-6287-3311")
    form = sender_keys("xu.dagang@163.com", "15062873311")
    stranger = sender_keys("xu.dagang@163.com".replace(".", ""), "15062873312")
    assert call.shares(form)
    assert not call.shares(stranger) and not form.shares(stranger)


# --- the index ---------------------------------------------------------------------------------

REPORT = load_report_text()
FIRST = ("金桥苑小区监控坏了半年", "秦灶街道金桥苑小区的监控有一大半是坏的，坏了半年多物业一直说报修了，"
         "上个月小区连续发生入室盗窃，派出所来调监控什么也没有。")
REWORDED = ("金桥苑入室盗窃", "金桥苑小区多个摄像头长期不亮已经半年，物业推给派出所。上个月5号楼和"
            "7号楼都被撬门入室盗窃，监控一点用都没有。")
OTHER = ("广场舞噪音", "文峰公园东门广场每天晚上跳广场舞，音箱声音很大，老人孩子休息不好。")


@pytest.fixture(scope="module")
def index() -> RepeatIndex:
    return RepeatIndex(report_text=REPORT)


def test_a_reworded_letter_finds_the_case_and_an_unrelated_one_does_not(index):
    index.insert(1, index.sign(*FIRST))
    index.insert(2, index.sign(*OTHER))
    found = index.query(index.sign(*REWORDED))
    assert [m.case_id for m in found] == [1]
    assert found[0].jaccard >= index.threshold and 0 < found[0].estimate <= 1


def test_removed_cases_are_not_found(index):
    index.insert(1, index.sign(*FIRST))
    index.remove(1)
    index.remove(1)  # twice: closing a case that is already out is no error
    assert 1 not in index
    assert index.query(index.sign(*REWORDED)) == []


def test_a_case_does_not_match_itself_when_excluded(index):
    sig = index.sign(*FIRST)
    index.insert(7, sig)
    assert [m.case_id for m in index.query(sig)] == [7]
    assert index.query(sig, exclude=7) == []
    index.remove(7)


def test_quoting_the_same_report_passage_is_not_the_same_matter(index):
    passage = "推动政法单位公共服务平台和信访举报平台建设,畅通群众举报渠道"
    a = index.sign("热线", f"通报里说“{passage}”，可我打了十几次检察服务热线，一直没人接。")
    b = index.sign("网页", f"看到通报写着“{passage}”，我在网站上举报，表单提交时一直报错。")
    index.insert(11, a)
    assert index.query(b) == []
    plain = RepeatIndex()  # the same letters compared without cutting the report out
    plain.insert(11, plain.sign("热线", f"通报里说“{passage}”，可我打了十几次检察服务热线，一直没人接。"))
    assert plain.query(plain.sign("网页", f"看到通报写着“{passage}”，我在网站上举报，表单提交时一直报错。"))
    index.remove(11)


def test_phone_numbers_and_dates_do_not_make_letters_alike(index):
    a = index.sign("", "联系电话13912345678，2024年3月5日，我家门口的路灯坏了，晚上很黑。")
    b = index.sign("", "联系电话13912345678，2024年3月5日，学校附近有黑网吧，未成年人也能进。")
    index.insert(21, a)
    assert index.query(b) == []
    index.remove(21)


def test_quoted_history_and_greetings_are_not_compared(index):
    quoted = "\n".join(f"> {line}" for line in FIRST[1].split("，"))
    reply = index.sign("回复", f"尊敬的领导：您好！请问路灯什么时候修？谢谢！\n\n在 2024-03-05，"
                                f"<ntzfwjgdw@163.com> 写道：\n{quoted}")
    index.insert(31, index.sign(*FIRST))
    assert index.query(reply) == []
    index.remove(31)


def test_a_signature_survives_pickling_for_a_prepare_process(index):
    sig = pickle.loads(pickle.dumps(index.sign(*FIRST)))
    index.insert(41, sig)
    assert [m.case_id for m in index.query(index.sign(*REWORDED))] == [41]
    index.remove(41)


def test_a_letter_without_words_of_its_own_is_not_indexed(index):
    empty = index.sign("", "您好！谢谢！ 13912345678")
    index.insert(51, empty)
    assert 51 not in index and index.query(empty) == []


def test_a_campaign_is_checked_newest_first_and_each_case_once(index):
    """Hundreds of letters about one event, word for word alike or reworded, filed and closed
    in any order: a query examines the newest MAX_EXAMINED of them by id (a case reopened
    under its old id counts by that id), never a closed one, and an unrelated case never."""
    from handlers.repeats import MAX_EXAMINED

    alike = RepeatIndex(report_text=REPORT)
    copy, reworded, other = alike.sign(*FIRST), alike.sign(*REWORDED), alike.sign(*OTHER)
    ids = list(range(1, 3 * MAX_EXAMINED))
    for case_id in reversed(ids):  # the newest first: buckets must keep their order by id
        alike.insert(case_id, reworded if case_id % 5 == 0 else copy)
    alike.insert(10_000, other)
    closed = {ids[-1], ids[-7], ids[-40]}
    for case_id in closed:
        alike.remove(case_id)
    alike.insert(3, copy)  # reopened: back in, under its old id
    found = alike.query(copy, exclude=ids[-2])
    newest = sorted(set(ids) - closed, reverse=True)[:MAX_EXAMINED]
    assert sorted(m.case_id for m in found) == sorted(set(newest) - {ids[-2]})
    assert {m.jaccard for m in found if m.case_id % 5} == {1.0}
    assert {m.jaccard for m in found if m.case_id % 5 == 0} == {
        jaccard(copy.shingles, reworded.shingles)}
    assert found == sorted(found, key=lambda m: (-m.jaccard, m.case_id))
    for case_id in newest:
        alike.remove(case_id)
    rest = sorted(set(ids) - closed - set(newest), reverse=True)[:MAX_EXAMINED]
    assert sorted(m.case_id for m in alike.query(copy)) == sorted(rest)


def test_ranked_without_estimates_finds_the_same_cases_in_the_same_order():
    """The store step reads the exact Jaccards only: without the estimates the cases, their
    order and their Jaccards are those of a full query."""
    alike = RepeatIndex(report_text=REPORT)
    for case_id in range(1, 60):
        alike.insert(case_id, alike.sign(*(REWORDED if case_id % 3 else FIRST)))
    alike.insert(60, alike.sign(*OTHER))
    full = alike.ranked(alike.sign(*FIRST), exclude=5)
    lean = alike.ranked(alike.sign(*FIRST), exclude=5, estimates=False)
    assert full[0].tolist() == lean[0].tolist() and len(full[0]) == 58
    assert full[2].tolist() == lean[2].tolist()
    assert len(full[1]) == 58 and len(lean[1]) == 0
