"""Fixtures for the classifier tests: the shipped model, trained once per session into a
temporary cache (never the developer's ~/.cache), and a taxonomy-only model."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from handlers.classify import Classifier, load_taxonomy, shipped_classifier, shipped_scorer, train
from handlers.classify.store import shipped_examples


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("FEEDBACK_BOT_CACHE")
    os.environ["FEEDBACK_BOT_CACHE"] = str(tmp_path_factory.mktemp("model-cache"))
    shipped_classifier.cache_clear()
    shipped_scorer.cache_clear()
    yield
    shipped_classifier.cache_clear()
    shipped_scorer.cache_clear()
    if old is None:
        os.environ.pop("FEEDBACK_BOT_CACHE", None)
    else:
        os.environ["FEEDBACK_BOT_CACHE"] = old


@pytest.fixture(scope="session")
def shipped() -> Classifier:
    return shipped_classifier()


@pytest.fixture(scope="session")
def taxonomy_only() -> Classifier:
    return train([], load_taxonomy())


@pytest.fixture(scope="session")
def small_examples() -> list[dict]:
    """A quick-to-train slice of the corpus: a few examples of every label."""
    seen: dict[str, int] = {}
    out = []
    for ex in shipped_examples(with_dev=False):
        if seen.get(ex["category"], 0) < 6:
            seen[ex["category"]] = seen.get(ex["category"], 0) + 1
            out.append(ex)
    return out
