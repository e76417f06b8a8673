"""What the classifier says about one letter.

Its own module, free of scikit-learn: the label travels from the prepare processes to the
service (pickled), and unpickling it must not import the model's libraries there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Classification:
    category: str
    measure: str | None
    kind: str
    confidence: float
    top: list[tuple[str, float]]  # 3 best categories, scores sum ≤ 1
    explanation: str  # Chinese, one or two lines, for staff
    model_version: str
    taxonomy_version: str

    def needs_review(self, threshold: float) -> bool:
        """True when staff should check the label (confidence below the deployment's bar)."""
        return self.confidence < threshold
