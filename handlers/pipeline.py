"""The intake pipeline: one raw input in, one stored submission (or follow-up) out.

Every source converges here (Zulip's ``process_message`` habit): the intake worker loads a raw
intake row, builds an :class:`Intake` and runs the steps in order,

    parse → loop_guard → classify → store → acknowledge

inside one database transaction, so that the submission, its history and its acknowledgement in
the outbox are written together or not at all. A step fills in its part of the Intake; it stops the
chain by raising :class:`Discard` (the raw input stays stored, nothing is acknowledged). No step
opens a socket: acknowledge writes an outbox row and the outbox worker delivers it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers.classify.restrict import DEFAULT_THRESHOLD as DEFAULT_RESTRICT_THRESHOLD
from handlers.tracking import new_tracking_no

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from handlers.classify import Classification, Scorer
    from handlers.loop_guard import LoopPolicy
    from handlers.parse import ParsedMail


class Discard(Exception):  # noqa: N818 - a signal, as in Mailman
    """Stop the pipeline for this input: kept as received, not filed, not acknowledged."""

    def __init__(self, reason: str, submission_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.submission_id = submission_id


@dataclass
class Context:
    """What the steps need from the running service, passed in (no globals)."""

    session: AsyncSession
    secret: bytes
    public_url: str
    from_addr: str
    from_name: str
    loop_policy: LoopPolicy
    # Something with ``get() -> Scorer`` (a ClassifierHolder), asked only when a letter needs
    # classifying here: with the work done in prepare processes, the service itself never
    # loads the model (numpy, the jieba dictionary and the model's arrays: about 100 MB).
    classifier_holder: Any = None
    review_threshold: float = 0.55
    restrict_threshold: float = DEFAULT_RESTRICT_THRESHOLD  # handlers/classify/restrict.py
    tracking_prefix: str = "FK"
    acks_per_sender_per_day: int = 3
    accept_days: int = 15
    handle_days: int = 60
    timezone: str = "Asia/Shanghai"
    attachments_dir: Path = Path("var/attachments")
    max_message_bytes: int = 25 * 1024 * 1024
    templates: Any = None  # a jinja2.Environment for mail templates
    message_id_domain: str = "localhost"  # host of our Message-IDs (Settings.message_id_domain)

    @property
    def classifier(self) -> Scorer | None:
        return self.classifier_holder.get() if self.classifier_holder is not None else None


@dataclass
class Intake:
    """One input, filled step by step."""

    raw_id: int
    channel: str  # web, email, phone, post
    received_at: datetime
    raw: bytes | None = None
    form: dict[str, Any] | None = None
    tracking_no: str | None = None
    tracking_drawn: bool = False  # tracking_no was drawn ahead by prepare(), not yet checked
    query_code: str | None = None  # derived by store, shown in the acknowledgement
    actor: str = "system"
    # A citizen's addition on the status page: the tracking number of the case it belongs to
    # (the writer proved it with the query code), filed as that case's follow-up.
    addition_to: str | None = None
    acknowledge: bool = True  # False: file it, send nothing (an import of old mail)
    form_attachments: list[dict[str, Any]] = field(default_factory=list)  # stored at POST time
    prepared: bool = False  # parsed, judged (and maybe classified) ahead, by prepare()
    # filled by parse
    parsed: ParsedMail | None = None
    from_name: str | None = None
    from_addr: str | None = None
    phone: str | None = None
    subject: str = ""
    text: str = ""
    new_text: str = ""
    message_id: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    # filled by loop_guard
    auto: str | None = None
    auto_reason: str | None = None
    # filled by classify
    classification: Classification | None = None
    # filled by store
    submission_id: int | None = None
    followup_of: int | None = None
    related_id: int | None = None
    is_new: bool = False
    # filled by acknowledge (drafted ahead by prepare(): tracking number, Message-ID, bytes)
    ack_draft: tuple[str, str, bytes] | None = None
    ack_message_id: str | None = None
    ack_skipped: str | None = None
    # set by the step that stops the chain for this input
    discard: Discard | None = None

    def draw_tracking_no(self, prefix: str) -> None:
        """A fresh number for an input that came without one (the web form draws its own);
        the store step checks it against the database before it is used."""
        if not self.tracking_no:
            self.tracking_no = new_tracking_no(prefix)
            self.tracking_drawn = True


Step = Callable[[list[Intake], Context], Awaitable[None]]


def default_steps() -> Sequence[tuple[str, Step]]:
    """The steps in order, imported lazily so that a step's heavy imports load once, on use."""
    from handlers import acknowledge, loop_guard, parse, store
    from handlers.classify import step as classify_step

    return (
        ("parse", parse.process_many),
        ("loop-guard", loop_guard.process_many),
        ("classify", classify_step.process_many),
        ("store", store.process_many),
        ("acknowledge", acknowledge.process_many),
    )


def live(intakes: Sequence[Intake]) -> list[Intake]:
    """The inputs no step has discarded: what the next step works on."""
    return [i for i in intakes if i.discard is None]


async def run(intakes: list[Intake], ctx: Context,
              steps: Sequence[tuple[str, Step]] | None = None) -> None:
    """Run every step on the batch; a discarded input carries its :class:`Discard`."""
    for _name, step in steps or default_steps():
        await step(live(intakes), ctx)


def prepare(intakes: Sequence[Intake], ctx: Context) -> None:
    """Do the steps' work that needs no database ahead, for a whole batch, so that the
    transaction that files it only talks to the database: parse and judge (machine mail or
    not) each input, classify the citizens' letters in one call, and draw each new letter's
    tracking number and draft its acknowledgement. ``ctx.session`` is not used: this may run in
    a thread or in another process. The classifier takes the letters in one call: its fixed cost
    per call is then paid once a batch, not once a letter. The steps then skip what is
    done; a drawn number the database already holds is drawn again there and the draft
    rewritten. An input that fails here is left unprepared and takes the normal path, errors
    included."""
    from handlers import acknowledge, loop_guard, parse
    from handlers.classify.step import classify_input

    ready = []
    for intake in intakes:
        try:
            parse.fill(intake, ctx.max_message_bytes)
            loop_guard.judge(intake, ctx.loop_policy)
        except Exception:  # noqa: BLE001 - the pipeline meets it again and records it
            continue
        intake.prepared = True
        if not intake.auto:
            ready.append(intake)
    classifier = ctx.classifier if ready else None
    if classifier is not None:
        try:
            results = classifier.classify_many([classify_input(i) for i in ready])
        except Exception:  # noqa: BLE001 - the classify step tries them again
            results = [None] * len(ready)
        for intake, result in zip(ready, results, strict=True):
            intake.classification = result
    for intake in ready:
        try:
            intake.draw_tracking_no(ctx.tracking_prefix)
            acknowledge.draft(intake, ctx)
        except Exception:  # noqa: BLE001 - acknowledge composes it in the transaction
            intake.ack_draft = None
