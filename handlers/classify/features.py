"""Feature extraction: TF-IDF over jieba words and over character 1–3-grams.

Words carry meaning ("派出所", "执行难"); character n-grams tolerate typos, unknown words and
mixed scripts. Both are weighted by scikit-learn's TfidfTransformer and stacked side by side.

Character n-grams are counted by ``CharNgramCounter``, which does what
``CountVectorizer(analyzer="char", ngram_range=(1, 3))`` does (a test checks they agree) but in
numpy for the whole batch at once (``ngrams.py``): scikit-learn builds every n-gram as a Python
string, about 270 µs for a 300-character message, more than half of the 500 µs a message may
take at the required 2,000 messages/s.

This is the training side; the running service predicts with ``scorer.Scorer``, which
reproduces ``Featuriser.transform`` with numpy alone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

from .ngrams import gram_key, ngram_hits

# With labelled data, n-grams and words seen in only one training document are dropped
# (4x fewer features, same accuracy); with the taxonomy alone every one of them counts.
MIN_DF = 2
MIN_DF_FROM = 200  # labelled examples needed before MIN_DF applies


class CharNgramCounter:
    """Counts of known character 1..3-grams, as a CSR matrix (rows = documents)."""

    def __init__(self, max_n: int = 3, min_df: int = 1) -> None:
        self.max_n = max_n
        self.min_df = min_df

    def fit(self, docs: Sequence[str]) -> CharNgramCounter:
        vocab = (
            CountVectorizer(
                analyzer="char", ngram_range=(1, self.max_n), lowercase=False, min_df=self.min_df
            )
            .fit(docs)
            .vocabulary_
        )
        grams = sorted(vocab, key=gram_key)
        self.keys_ = np.array([gram_key(g) for g in grams], dtype=np.uint64)
        self.grams_ = grams
        return self

    def transform(self, docs: Sequence[str]) -> sparse.csr_matrix:
        rows, cols = ngram_hits(self.keys_, docs, self.max_n)
        m = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(self.keys_))
        )
        m.sum_duplicates()
        return m

    def get_feature_names_out(self) -> np.ndarray:
        return np.array(self.grams_, dtype=object)


class Featuriser:
    """Word TF-IDF (jieba words and word bigrams) next to character 1–3-gram TF-IDF."""

    def __init__(self, n_examples: int = 0) -> None:
        min_df = MIN_DF if n_examples >= MIN_DF_FROM else 1
        self.words = TfidfVectorizer(
            tokenizer=str.split,
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=min_df,
        )
        self.char_counts = CharNgramCounter(min_df=min_df)
        self.char_tfidf = TfidfTransformer(sublinear_tf=True)

    def fit(self, clean: Sequence[str], words: Sequence[str]) -> Featuriser:
        self.words.fit(words)
        # A set of the words min_df dropped: unused, and its order follows the per-process
        # string hash seed, which would make two identical trainings pickle differently.
        self.words.stop_words_ = None
        self.char_tfidf.fit(self.char_counts.fit(clean).transform(clean))
        self.word_names = self.words.get_feature_names_out()
        self.n_words = len(self.word_names)
        return self

    def __getstate__(self) -> dict:
        # scikit-learn caches id(stop_words) on the vectoriser: a memory address, different
        # in every process. Leaving it out keeps the pickle of a retrained model identical.
        words = copy.copy(self.words)
        words.__dict__.pop("_stop_words_id", None)
        return {**self.__dict__, "words": words}

    def transform(self, clean: Sequence[str], words: Sequence[str]) -> sparse.csr_matrix:
        chars = self.char_tfidf.transform(self.char_counts.transform(clean))
        return sparse.hstack([self.words.transform(words), chars], format="csr")
