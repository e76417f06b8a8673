"""What a pipeline step is: the :class:`Step` it exports, the :class:`Intake` it fills, the
:class:`Context` it is given, and the :class:`Discarded` mark that stops the chain for one input.

Every step module (parse, loop_guard, classify/step, store, acknowledge) imports these and
nothing of ``handlers.pipeline``, which imports the steps to list them: the dependency points
one way. The module is called ``step`` (not ``intake``, a word that already names the raw rows,
their worker and the form's writer) because it holds the contract a step module fulfils. It
imports no step module and nothing heavy: the prepare processes import it with every step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from handlers.classify.restrict import DEFAULT_THRESHOLD as DEFAULT_RESTRICT_THRESHOLD
from handlers.tracking import new_tracking_no

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from handlers.classify import Classification, Scorer
    from handlers.mail.parsed import ParsedMail
    from handlers.repeats import RepeatIndex, Shingler, Signature


@dataclass(frozen=True)
class Discarded:
    """Why a step stopped the chain for this input: it stays stored as received (the raw row
    is marked ``discarded`` with the reason), it is not filed and not acknowledged."""

    reason: str
    submission_id: int | None = None  # the submission the input duplicates, if any


@dataclass(frozen=True)
class LoopPolicy:
    """Which mail is our own, for loop_guard (``bot.runtime.loop_policy_for`` builds it)."""

    own_addresses: frozenset[str] = frozenset()   # lower-cased addresses we send from / receive at
    # The service secret: a Message-ID carrying its HMAC is ours (handlers.tracking). Empty: no
    # Message-ID is recognised. Never a domain: at a shared provider (163.com) the citizens'
    # Message-IDs end in the same domain as ours would.
    secret: bytes = field(default=b"", repr=False)
    loop_header: str = "X-Feedback-Bot-Loop"     # our own loop header; its value is our address


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
    sms: bool = False  # an SMS gateway is configured ([sms]): notices reach phone-only citizens
    # Repeat letters (handlers/repeats.py): the open cases' index, owned by the running service
    # (bot/repeat_index.py; None: no near-duplicate links, sender links are still made), and the
    # shingler that cuts a letter into what the index compares (a prepare process has only it).
    repeats: RepeatIndex | None = None
    shingler: Shingler | None = None
    repeat_window_days: int = 90
    phone_area: str = ""
    urgent_duty: tuple[str, ...] = ()  # [urgent] duty: who gets an urgent letter's alert

    @property
    def classifier(self) -> Scorer | None:
        return self.classifier_holder.get() if self.classifier_holder is not None else None


class AckDraft(NamedTuple):
    """An acknowledgement composed ahead, valid while the letter keeps ``tracking_no``."""

    tracking_no: str
    message_id: str
    message: bytes


@dataclass
class Lookahead:
    """What ``pipeline.prepare`` did for one input before its transaction, so that the steps
    there skip it (or check it against the database) instead of doing it again."""

    done: set[str] = field(default_factory=set)  # names of the steps whose prepare half ran
    tracking_drawn: bool = False  # tracking_no was drawn here, not yet checked by store
    ack_draft: AckDraft | None = None  # acknowledge's mail, composed for that number


@dataclass
class Intake:
    """One input, filled step by step."""

    raw_id: int
    channel: str  # web, email, phone, post
    received_at: datetime
    raw: bytes | None = None
    form: dict[str, Any] | None = None
    tracking_no: str | None = None
    query_code: str | None = None  # derived by store, shown in the acknowledgement
    actor: str = "system"
    acknowledge: bool = True  # False: file it, send nothing (an import of old mail)
    form_attachments: list[dict[str, Any]] = field(default_factory=list)  # stored at POST time
    # A citizen's addition on the status page: the tracking number of the case it belongs to
    # (the writer proved it with the query code), filed as that case's follow-up.
    addition_to: str | None = None
    ahead: Lookahead = field(default_factory=Lookahead)
    # filled by parse
    parsed: ParsedMail | None = None
    from_name: str | None = None
    from_addr: str | None = None
    phone: str | None = None
    postal_address: str | None = None  # typed in at staff entry (a letter's return address)
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
    # filled by store's prepare half: the letter's shingles and MinHash for the repeat index
    signature: Signature | None = None
    submission_id: int | None = None
    followup_of: int | None = None
    related_id: int | None = None
    is_new: bool = False
    restricted: bool = False  # a 举报 (its alert names no category: handlers/urgent.py)
    urgent: bool = False  # the classifier flagged it urgent (handlers/urgent.verdict)
    # filled by acknowledge
    ack_message_id: str | None = None
    ack_skipped: str | None = None
    # set by the step that stops the chain for this input; the later steps do not see it
    discard: Discarded | None = None

    def draw_tracking_no(self, prefix: str) -> None:
        """A fresh number for an input that came without one (the web form draws its own);
        the store step checks it against the database before it is used."""
        if not self.tracking_no:
            self.tracking_no = new_tracking_no(prefix)
            self.ahead.tracking_drawn = True


PrepareHalf = Callable[[list[Intake], Context], list[Intake]]


@dataclass(frozen=True)
class Step:
    """One step of the pipeline, as its module exports it (``STEP``).

    ``process_many`` runs in the filing transaction on the inputs no step has discarded.
    ``prepare``, where a step has one, is the part of its work that needs no database: it runs
    ahead on a batch, outside any transaction, maybe in another process (``ctx.session`` is
    None there), and returns the inputs it did its work for; ``process_many`` then skips that
    work for them. An input it leaves out takes the normal path in the transaction."""

    name: str  # "loop-guard" ↔ loop_guard.py; recorded in ``Lookahead.done``
    process_many: Callable[[list[Intake], Context], Awaitable[None]]
    prepare: PrepareHalf | None = None


def one_by_one(work: Callable[[Intake, Context], None]) -> PrepareHalf:
    """A prepare half made of per-input work: an input the work fails on is left out (the
    transaction meets the error again, and records it for staff)."""

    def half(intakes: list[Intake], ctx: Context) -> list[Intake]:
        done = []
        for intake in intakes:
            try:
                work(intake, ctx)
            except Exception:  # noqa: BLE001, S112 - the pipeline meets it again and records it
                continue
            done.append(intake)
        return done

    return half
