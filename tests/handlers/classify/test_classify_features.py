"""Text normalisation and the numpy character n-gram counter."""

from __future__ import annotations

import unicodedata

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from handlers.classify.features import CharNgramCounter
from handlers.classify.text import Normaliser, to_simplified


def test_traditional_is_folded_to_simplified() -> None:
    assert to_simplified("派出所的綜合窗口辦證太慢") == "派出所的综合窗口办证太慢"
    plain = "派出所的综合窗口"
    assert to_simplified(plain) is plain  # no conversion work for simplified text


def test_english_words_gain_chinese_keywords_and_noise_is_dropped() -> None:
    clean, words = Normaliser()(
        "", "The police never called back, see http://x.example.com/a 13912345678"
    )
    assert "警察" in words.split()
    assert "example" not in clean and "13912345678" not in clean


def test_english_stop_words_handed_in_are_dropped() -> None:
    message = ("", "The police never called back about the case")
    _, kept = Normaliser()(*message)
    _, dropped = Normaliser(stop_words=("the", "about", "back"))(*message)
    assert "the" in kept.split() and "the" not in dropped.split()
    assert {"police", "never", "called", "case"} <= set(dropped.split())


def test_full_width_question_mark_survives_as_a_word() -> None:
    _, words = Normaliser()("", "请问怎么申请？")
    assert "?" in words.split()


def test_letters_are_folded_exactly_as_nfkc_folds_them() -> None:
    """Full-width punctuation, letters and digits, an ideographic space, a decomposed accent, a
    circled number and a compatibility ideograph: the classifier sees NFKC text however it is
    written (the cheap path for common punctuation must not change what it sees)."""
    norm = Normaliser()
    for text in ["请问，派出所？！（急）：几点；～…", "ＡＢＣ１２３　法院", "cafe\u0301的①号窗口",
                 "\uf900立案", "已处理，e\u0301té①，ＡＢ"]:
        expected = " ".join(unicodedata.normalize("NFKC", text).lower().split())
        assert norm.clean(text) == to_simplified(expected), text


def test_taxonomy_terms_are_kept_whole() -> None:
    _, words = Normaliser(("当好一天网格员",))("", "组织当好一天网格员活动")
    assert "当好一天网格员" in words.split()


def test_char_counter_agrees_with_scikit_learn() -> None:
    train = ["派出所窗口办事慢", "雪亮工程 摄像头坏了?", "abc 😀 法院"]
    docs = train + ["", "窗口窗口", "完全陌生的字"]
    ref = CountVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False).fit(train)
    ours = CharNgramCounter().fit(train)
    names = list(ours.get_feature_names_out())
    order = [names.index(n) for n in ref.get_feature_names_out()]
    assert np.array_equal(ref.transform(docs).toarray(), ours.transform(docs).toarray()[:, order])
