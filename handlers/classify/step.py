"""Pipeline step 3: file the message under the report's categories and measures.

Only the citizen's new words are classified (a reply's quoted history would repeat our own
acknowledgement). Machine mail is not classified. Without a classifier the submission stays
``unclassified``, honestly labelled.
"""

from __future__ import annotations

from handlers.pipeline import Context, Intake


async def process(intake: Intake, ctx: Context) -> None:
    if ctx.classifier is None or intake.auto:
        intake.classification = None  # a batch may have classified it before loop_guard ran
        return
    if intake.classification is None:  # not classified ahead in a batch (pipeline.prepare)
        intake.classification = ctx.classifier.classify(*classify_input(intake))


def classify_input(intake: Intake) -> tuple[str, str]:
    """What the classifier reads: the subject and the citizen's new words."""
    return intake.subject, intake.new_text or intake.text
