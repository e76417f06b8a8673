"""The classify step: label each submission with a category, measure and kind.

The taxonomy comes from the published report (``taxonomy.py``); the model is a set of
scikit-learn classifiers over jieba words and character n-grams (``model.py``), exported for
prediction to a numpy-only ``Scorer`` (``scorer.py``); trained models live in a model
directory and are hot-swapped by ``ClassifierHolder`` (``store.py``), which hands out scorers;
``evaluate.py`` scores a model on labelled data.

Names are imported on first use (PEP 562): the taxonomy and the pipeline step are wanted
everywhere, scikit-learn (about 120 MB with scipy) only where a model is trained or evaluated.
The process that classifies letters loads a Scorer and never imports scikit-learn or scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Classifier, train
    from .result import Classification
    from .scorer import Scorer
    from .store import ClassifierHolder, save_model, shipped_classifier, shipped_scorer
    from .taxonomy import Category, Measure, Taxonomy, TaxonomyError, load_taxonomy

_HOME = {
    "Classification": ".result", "Classifier": ".model", "train": ".model",
    "ClassifierHolder": ".store", "save_model": ".store", "shipped_classifier": ".store",
    "shipped_scorer": ".store", "Scorer": ".scorer",
    "Category": ".taxonomy", "Measure": ".taxonomy", "Taxonomy": ".taxonomy",
    "TaxonomyError": ".taxonomy", "load_taxonomy": ".taxonomy",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Category",
    "Classification",
    "Classifier",
    "ClassifierHolder",
    "Measure",
    "Taxonomy",
    "Scorer",
    "TaxonomyError",
    "load_taxonomy",
    "save_model",
    "shipped_classifier",
    "shipped_scorer",
    "train",
]
