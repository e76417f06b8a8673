"""The classify step: label each submission with a category, measure and kind.

The taxonomy comes from the published report (``taxonomy.py``); the model is a set of
scikit-learn classifiers over jieba words and character n-grams (``model.py``); trained models
live in a model directory and are hot-swapped by ``ClassifierHolder`` (``store.py``);
``evaluate.py`` scores a model on labelled data.
"""

from .model import Classification, Classifier, train
from .store import ClassifierHolder, save_model, shipped_classifier
from .taxonomy import Category, Measure, Taxonomy, TaxonomyError, load_taxonomy

__all__ = [
    "Category",
    "Classification",
    "Classifier",
    "ClassifierHolder",
    "Measure",
    "Taxonomy",
    "TaxonomyError",
    "load_taxonomy",
    "save_model",
    "shipped_classifier",
    "train",
]
