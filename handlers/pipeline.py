"""The intake pipeline: one raw input in, one stored submission (or follow-up) out.

Every source converges here (Zulip's ``process_message`` habit): the intake worker loads raw
intake rows, builds an :class:`~handlers.step.Intake` for each and runs the steps of
:data:`PIPELINE` in order,

    parse → loop_guard → classify → store → urgent → acknowledge

inside one database transaction, so that the submission, its history and its acknowledgement in
the outbox are written together or not at all. A step fills in its part of each Intake; it stops
the chain for one input by setting ``intake.discard`` to a :class:`~handlers.step.Discarded`
(the raw input stays stored, nothing is filed or acknowledged), and the later steps do not see
it. No step opens a socket: acknowledge writes an outbox row and the outbox worker delivers it.
A new step is one module exporting ``STEP`` (see :class:`~handlers.step.Step`) and one entry here.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers import acknowledge, loop_guard, parse, store, urgent
from handlers.classify import step as classify
from handlers.step import Context, Intake, Step

# The one list of steps, in order: run() files a batch through it, prepare() does the database-
# free halves ahead. The step modules import no storage module at their top level (each imports
# it where it uses the database): the prepare processes import this list and never load SQLAlchemy.
PIPELINE: tuple[Step, ...] = (parse.STEP, loop_guard.STEP, classify.STEP, store.STEP,
                              urgent.STEP, acknowledge.STEP)


def live(intakes: Sequence[Intake]) -> list[Intake]:
    """The inputs no step has discarded: what the next step works on."""
    return [i for i in intakes if i.discard is None]


async def run(intakes: list[Intake], ctx: Context) -> None:
    """Run every step on the batch; a discarded input carries its ``Discarded``."""
    for step in PIPELINE:
        await step.process_many(live(intakes), ctx)


def prepare(intakes: Sequence[Intake], ctx: Context) -> None:
    """Do the steps' work that needs no database ahead, for a whole batch, so that the
    transaction that files it only talks to the database: parse and judge (machine mail or
    not) each input, classify the citizens' letters in one call (the classifier's fixed cost
    per call is then paid once a batch, not once a letter), draw each new letter's tracking
    number and draft its acknowledgement. ``ctx.session`` is not used: this may run in a thread
    or in another process. Each step's prepare half gets the inputs the halves before it
    prepared; an input one of them fails on is left there and takes the normal path in the
    transaction, errors included. A drawn number the database already holds is drawn again
    there and the draft rewritten. A classifier that cannot be loaded is not an input's fault:
    that error goes up to the intake worker's loop, which reports it and tries again."""
    ahead = list(intakes)
    for step in PIPELINE:
        if step.prepare is not None and ahead:
            ahead = step.prepare(ahead, ctx)
            for intake in ahead:
                intake.ahead.done.add(step.name)
