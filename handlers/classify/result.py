"""What the classifier says about one letter.

Its own module, free of scikit-learn: the label travels from the prepare processes to the
service (pickled), and unpickling it must not import the model's libraries there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .restrict import DEFAULT_THRESHOLD, Restriction, decide
from .urgent import Urgency


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
    urgent: bool = False  # a risk to someone's safety that staff must see today (urgent.py)
    urgent_score: float = 0.0  # the urgency model's probability
    # "轻生：喝农药" …: the live cues behind an urgent letter. The part after "：" quotes the
    # letter (up to ~40 characters): letter content, as confidential as the letter itself.
    urgent_cues: tuple[str, ...] = ()

    def urgent_kinds(self) -> tuple[str, ...]:
        """The kinds of risk found ("轻生", "暴力威胁" …), without the letter's words: what an
        output that must carry no letter content (an alert) may say."""
        return tuple(dict.fromkeys(c.partition("：")[0] for c in self.urgent_cues))

    def urgent_reason(self) -> str:
        """One line in Chinese for staff; empty when not urgent."""
        return Urgency(self.urgent, self.urgent_score, self.urgent_cues).reason()

    def needs_review(self, threshold: float) -> bool:
        """True when staff should check the label (confidence below the deployment's bar)."""
        return self.confidence < threshold

    def restriction(self, threshold: float = DEFAULT_THRESHOLD, *,
                    writer: bool = False) -> Restriction:
        """Whether the letter is restricted (a 举报): ``restrict.decide`` on this label."""
        return decide(writer=writer, kind=self.kind, report_prob=self.report_prob,
                      report_cue=self.report_cue, threshold=threshold)
