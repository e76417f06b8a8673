"""handlers.digest.postag tags a stretch exactly as jieba.posseg's own HMM pass does.

The masking finds the names the HMM tags, so the numpy Viterbi must give jieba's words and tags
on every stretch, ties included: checked on runs of the project's corpus and development set, and on random strings of the characters letters use (more
unknown words, more ties, the characters jieba has no entry for)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.digest import mask, postag
from tests.handlers.digest.test_digest_mask import ALPHABET, letters


def jieba_detail(stretch: str) -> list[tuple[str, str]]:
    tagger = mask._posseg().dt
    tagger.makesure_userdict_loaded()
    return [tuple(p) for p in tagger._POSTokenizer__cut_detail(stretch)]


def runs(texts: list[str]) -> list[str]:
    """jieba's CJK/alphanumeric runs of the texts, as the masking hands them over."""
    split = mask._posseg().re_han_internal
    return [b for t in texts for b in split.split(t) if b and split.match(b)]


def test_the_corpus_runs_are_tagged_as_jieba_tags_them() -> None:
    stretches = runs(letters())
    assert len(stretches) >= 5000
    # Every fifth run (jieba's own pass is slow: all of them take minutes); the masking's test
    # compares the names of every letter with jieba's whole-text tagging.
    for s in stretches[::5]:
        assert postag.cut_detail(s) == jieba_detail(s), s


def test_random_han_text_is_tagged_as_jieba_tags_it() -> None:
    chars = sorted({c for t in letters()[:400] for c in t if "\u4e00" <= c <= "\u9fff"})
    chars += ["\u9fa0", "\u4e02"]  # rare characters jieba has no states for
    rng = random.Random(17)
    for _ in range(400):
        s = "".join(rng.choice(chars) for _ in range(rng.randrange(1, 40)))
        assert postag.cut_detail(s) == jieba_detail(s), s


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=ALPHABET, min_size=1, max_size=60))
def test_any_text_is_tagged_as_jieba_tags_it(text: str) -> None:
    assert postag.cut_detail(text) == jieba_detail(text)


@pytest.mark.parametrize("text", ["王", "一", "\u9fa0", "覃秀英", "欧阳娜娜住在幸福小区"])
def test_short_stretches(text: str) -> None:
    assert postag.cut_detail(text) == jieba_detail(text)
