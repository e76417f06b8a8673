"""The content hash that names a trained model.

Its own module, free of scikit-learn: the service finds the shipped model's cached scorer by
this name without importing scikit-learn, whose version is part of the hash (read from the
installed package's metadata, which is what ``sklearn.__version__`` reports).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version as package_version
from pathlib import Path

from .taxonomy import Taxonomy

# The code that defines a model is part of its content hash, so editing it invalidates
# cached shipped models.
_SOURCES = (
    "model.py",
    "result.py",
    "features.py",
    "ngrams.py",
    "text.py",
    "seeds.py",
    "explain.py",
    "decide.py",
    "urgent.py",
    "restrict.py",
    "firstchar.py",
)


def sklearn_version() -> str:
    return package_version("scikit-learn")


def data_version(examples: list[dict], tax: Taxonomy) -> str:
    """Content hash of everything that determines a trained model."""
    h = hashlib.sha256()
    h.update(f"{sklearn_version()}|{tax.version}".encode())
    for name in _SOURCES:
        h.update((Path(__file__).parent / name).read_bytes())
    for ex in examples:
        key = {k: ex.get(k) for k in ("subject", "body", "category", "measure", "kind", "weight",
                                         "urgent")}
        h.update(json.dumps(key, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return f"m-{h.hexdigest()[:12]}"
