"""What the classifier says about one letter.

Its own module, free of scikit-learn: the label travels from the prepare processes to the
service (pickled), and unpickling it must not import the model's libraries there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .restrict import DEFAULT_THRESHOLD, Restriction, decide


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
    report_prob: float = 0.0  # the kind model's probability of "report" (举报)
    report_cue: str | None = None  # the first misconduct-report cue in the text (restrict.py)

    def needs_review(self, threshold: float) -> bool:
        """True when staff should check the label (confidence below the deployment's bar)."""
        return self.confidence < threshold

    def restriction(self, threshold: float = DEFAULT_THRESHOLD, *,
                    writer: bool = False) -> Restriction:
        """Whether the letter is restricted (a 举报): ``restrict.decide`` on this label."""
        return decide(writer=writer, kind=self.kind, report_prob=self.report_prob,
                      report_cue=self.report_cue, threshold=threshold)
