"""Pipeline step 3: file the message under the report's categories and measures.

Only the citizen's new words are classified (a reply's quoted history would repeat our own
acknowledgement). Machine mail is not classified. Without a classifier the submission stays
``unclassified``, honestly labelled. The letters of a batch go to the classifier in one call,
ahead of the transaction (the prepare half) or in it: its fixed cost per call is paid once a
batch, not once a letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from handlers.step import Context, Intake, Step

if TYPE_CHECKING:
    from handlers.classify import Classification


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    todo = []
    for intake in intakes:
        if intake.auto:
            intake.classification = None  # it may have been classified before loop_guard ran
        elif intake.classification is None:  # not classified ahead (the prepare half)
            todo.append(intake)
    classifier = ctx.classifier if todo else None  # loads the model only when needed
    if classifier is not None:
        _label(todo, classifier.classify_many([classify_input(i) for i in todo]))


def classify_ahead(intakes: list[Intake], ctx: Context) -> list[Intake]:
    """The prepare half: the citizens' letters of the batch classified in one call. A failure
    leaves them unclassified, for :func:`process_many` to try again; the batch goes on to the
    next halves whole (a draft for a letter then labelled spam is not used)."""
    todo = [i for i in intakes if not i.auto]
    classifier = ctx.classifier if todo else None
    if classifier is not None:
        results: Sequence[Classification | None]
        try:
            results = classifier.classify_many([classify_input(i) for i in todo])
        except Exception:  # noqa: BLE001 - the classify step tries them again
            results = [None] * len(todo)
        _label(todo, results)
    return intakes


def _label(intakes: list[Intake], results: Sequence[Classification | None]) -> None:
    for intake, result in zip(intakes, results, strict=True):
        intake.classification = result


def classify_input(intake: Intake) -> tuple[str, str]:
    """What the classifier reads: the subject and the citizen's new words."""
    return intake.subject, intake.new_text or intake.text


STEP = Step("classify", process_many, prepare=classify_ahead)
