"""Feature extraction: TF-IDF over jieba words and over character 1–3-grams.

Words carry meaning ("派出所", "执行难"); character n-grams tolerate typos, unknown words and
mixed scripts. Both are weighted by scikit-learn's TfidfTransformer and stacked side by side.

Character n-grams are counted by ``CharNgramCounter``, which does what
``CountVectorizer(analyzer="char", ngram_range=(1, 3))`` does (a test checks they agree) but in
numpy for the whole batch at once (``ngrams.py``): scikit-learn builds every n-gram as a Python
string, about 270 µs for a 300-character message, more than half of the 500 µs a message may
take at the required 2,000 messages/s.

A third block, read by the kind model, holds the letter's structure (``structure.py``: its
subject, its closing sentences, the sentences that ask, request, thank or accuse) as prefixed
tokens, weighted by TF-IDF on their own and scaled by ``STRUCTURE_WEIGHT``.

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
# The structure block's rows have this l2 norm (the others: 1). Measured 0.5, 0.7 and 1: more
# weight finds more long letters that ask or thank after a story and misses more of the
# complaints that end in a question; 0.7 was best on long letters of another author (5-fold CV).
STRUCTURE_WEIGHT = 0.7


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
        self.structure = TfidfVectorizer(
            tokenizer=str.split,
            token_pattern=None,
            lowercase=False,
            sublinear_tf=True,
            min_df=min_df,
        )
        self.structure_weight = STRUCTURE_WEIGHT

    def fit(self, clean: Sequence[str], words: Sequence[str],
            structure: Sequence[str]) -> Featuriser:
        self.words.fit(words)
        try:
            self.structure.fit(structure)
        except ValueError:  # not one structure token in any document: an empty block
            self.structure.set_params(vocabulary=["#"]).fit(["#"])
        # A set of the words min_df dropped: unused, and its order follows the per-process
        # string hash seed, which would make two identical trainings pickle differently.
        self.words.stop_words_ = None
        self.structure.stop_words_ = None
        self.char_tfidf.fit(self.char_counts.fit(clean).transform(clean))
        self.word_names = self.words.get_feature_names_out()
        self.n_words = len(self.word_names)
        return self

    def __getstate__(self) -> dict:
        # scikit-learn caches id(stop_words) on the vectoriser: a memory address, different
        # in every process. Leaving it out keeps the pickle of a retrained model identical.
        out = dict(self.__dict__)
        for name in ("words", "structure"):
            if name not in out:  # a test's stand-in for a model from before the block
                continue
            vec = copy.copy(out[name])
            vec.__dict__.pop("_stop_words_id", None)
            if hasattr(vec, "vocabulary_"):
                # Its keys are in order of first sight in the training text, where a structure
                # string lists a role's words in set order (hash-seed dependent): by column.
                vec.vocabulary_ = dict(sorted(vec.vocabulary_.items(), key=lambda kv: kv[1]))
            out[name] = vec
        return out

    def transform(self, clean: Sequence[str], words: Sequence[str]) -> sparse.csr_matrix:
        """Words, then character n-grams: what every model but the kind model reads."""
        chars = self.char_tfidf.transform(self.char_counts.transform(clean))
        return sparse.hstack([self.words.transform(words), chars], format="csr")

    def transform_structure(self, structure: Sequence[str]) -> sparse.csr_matrix:
        """The structure block, scaled (the kind model reads it after ``transform``'s)."""
        m = self.structure.transform(structure)
        if self.structure_weight != 1.0:
            m.data *= self.structure_weight
        return m
