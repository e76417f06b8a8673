"""Feature extraction: TF-IDF over jieba words and over character 1–3-grams.

Words carry meaning ("派出所", "执行难"); character n-grams tolerate typos, unknown words and
mixed scripts. Both are weighted by scikit-learn's TfidfTransformer and stacked side by side.

Character n-grams are counted by ``CharNgramCounter``, which does what
``CountVectorizer(analyzer="char", ngram_range=(1, 3))`` does (a test checks they agree) but in
numpy for the whole batch at once: scikit-learn builds every n-gram as a Python string, about
270 µs for a 300-character message, more than half of the 500 µs a message may take at the
required 2,000 messages/s. Here each n-gram is packed into one integer (21 bits per code
point) and looked up in the sorted vocabulary with ``searchsorted``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

# With labelled data, n-grams and words seen in only one training document are dropped
# (4x fewer features, same accuracy); with the taxonomy alone every one of them counts.
MIN_DF = 2
MIN_DF_FROM = 200  # labelled examples needed before MIN_DF applies
_BITS = 21  # every Unicode code point fits in 21 bits, so a 3-gram fits in 63


def _pack(codes: np.ndarray, n: int) -> np.ndarray:
    """Integer key of every n-gram starting at each position of ``codes`` (uint64)."""
    length = len(codes) - n + 1
    key = np.zeros(max(length, 0), dtype=np.uint64)
    for k in range(n):
        key = (key << np.uint64(_BITS)) | codes[k : k + length]
    return key


def _key(gram: str) -> int:
    key = 0
    for ch in gram:
        key = (key << _BITS) | ord(ch)
    return key


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
        grams = sorted(vocab, key=_key)
        self.keys_ = np.array([_key(g) for g in grams], dtype=np.uint64)
        self.grams_ = grams
        return self

    def transform(self, docs: Sequence[str]) -> sparse.csr_matrix:
        # One pass over the batch: documents joined by NUL, and n-grams that touch a NUL
        # (i.e. span two documents) are dropped. NUL never occurs in cleaned text.
        joined = "\0".join(docs) + "\0"
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        row_of = np.repeat(np.arange(len(docs)), [len(d) + 1 for d in docs])
        rows_all, cols_all = [], []
        for n in range(1, self.max_n + 1):
            keys = _pack(codes, n)
            ok = np.ones(len(keys), dtype=bool)
            for k in range(n):
                ok &= codes[k : k + len(keys)] != 0
            pos = np.flatnonzero(ok)
            idx = np.searchsorted(self.keys_, keys[pos])
            idx[idx == len(self.keys_)] = 0
            hit = self.keys_[idx] == keys[pos]
            rows_all.append(row_of[pos[hit]])
            cols_all.append(idx[hit])
        rows, cols = np.concatenate(rows_all), np.concatenate(cols_all)
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
