"""Masking skips the runs of text that cannot hold a name, and still finds every name.

``mask._tagged_names`` tags the text run by run (jieba's CJK/alphanumeric runs) and leaves out
runs with no name-like stretch, which is what makes the digest's XLSX cheap. The masked text
must be exactly what tagging the whole text at once gives: checked on every letter of the
project's corpus and development set, and on random text made of surnames, given-name
characters, ordinary words, digits and punctuation.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.digest import mask

DATA = Path(__file__).resolve().parents[3] / "handlers" / "classify" / "data"


def whole_text_names(text: str) -> set[str]:
    """The names found by tagging the whole text in one jieba.posseg call."""
    return mask._names_in(list(mask._posseg().cut(text)))


def letters() -> list[str]:
    out = []
    for name in ("corpus.jsonl", "dev.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                out += [item.get("subject") or "", item.get("body") or ""]
    return out


def test_every_letter_of_the_corpus_gets_the_same_names() -> None:
    texts = letters()
    assert len(texts) >= 1000
    found = 0
    for text in texts:
        names = mask._tagged_names(text)
        assert names == whole_text_names(text), text
        found += bool(names)
    assert found >= 20  # the corpus does name people: the check is not vacuous


ALPHABET = list(
    "王李张刘陈赵周吴欧阳司马诸葛建国红梅卫东大伟华明秀英志强"  # surnames, given names
    "我叫是在的了和向于时成反映派出所法院街道小区电话手机先生女士同志区县镇村"  # words
    "，。！？、；：“”（） \n0123456789abcXYZ.@-"  # punctuation, space, digits, latin
)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=ALPHABET, max_size=80))
def test_random_text_gets_the_same_names(text: str) -> None:
    assert mask._tagged_names(text) == whole_text_names(text)


def test_names_in_a_long_letter_are_masked_and_places_kept() -> None:
    text = ("尊敬的领导：我是退休教师赵卫东，住在高新区宋庄镇。上个月和王先生一起去派出所，"
            "民警李红梅说材料不全。联系电话13812345678。")
    masked = mask.mask(text)
    assert "赵某某" in masked and "李某某" in masked
    assert "高新区" in masked and "宋庄镇" in masked and "王先生" in masked
    assert "13812345678" not in masked
