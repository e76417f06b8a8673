"""Pipeline step 3: file the message under the report's categories and measures.

Only the citizen's new words are classified (a reply's quoted history would repeat our own
acknowledgement). Machine mail is not classified. Without a classifier the submission stays
``unclassified``, honestly labelled.
"""

from __future__ import annotations

from handlers.pipeline import Context, Intake


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    todo = []
    for intake in intakes:
        if intake.auto:
            intake.classification = None  # it may have been classified before loop_guard ran
        elif intake.classification is None:  # not classified ahead (pipeline.prepare)
            todo.append(intake)
    classifier = ctx.classifier if todo else None  # loads the model only when needed
    if classifier is not None:
        results = classifier.classify_many([classify_input(i) for i in todo])
        for intake, result in zip(todo, results, strict=True):
            intake.classification = result


def classify_input(intake: Intake) -> tuple[str, str]:
    """What the classifier reads: the subject and the citizen's new words."""
    return intake.subject, intake.new_text or intake.text
