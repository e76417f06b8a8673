"""The report's category titles and measure texts, for pages, mails and the digest.

One cached, defensive loader for every reader of the taxonomy outside the classifier: the
classifier part is optional, and a page or a digest must still work (with numbered names) when it
cannot be loaded.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.classify.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy | None:
    """The shipped report's taxonomy, or None when the classifier part cannot provide it."""
    try:
        from handlers.classify import load_taxonomy

        return load_taxonomy()
    except Exception:
        log.warning("taxonomy not available; categories shown by number", exc_info=True)
        return None


def titles() -> dict[str, str]:
    """Category id → title; {} without a taxonomy."""
    tax = taxonomy()
    return {c.id: c.title for c in tax.categories} if tax else {}


def measure_texts() -> dict[str, str]:
    """Measure id → text; {} without a taxonomy."""
    tax = taxonomy()
    return {m.id: m.text for m in tax.measures} if tax else {}
