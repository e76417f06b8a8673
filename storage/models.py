"""SQLAlchemy models: what feedback-bot keeps, and why each table exists.

The tables follow the data flow. ``raw_intake`` holds every input exactly as it arrived, written
before anything else is done with it. ``submissions`` are what staff work on; ``followups`` are later
messages of the same citizen on the same matter. ``outbox`` holds complete RFC 5322 messages waiting
to be delivered, so a retry reuses the same bytes and Message-ID. ``events`` is the history of each
submission: who did what, when.

Schema changes go through Alembic (storage/migrations); ``Base.metadata`` is what they are checked
against.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import text as sql_text  # `text` is a column name in the classes below
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from storage import workflow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")




class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    SQLite has no time zone type and hands back naive values; this stores UTC and gives back
    aware datetimes everywhere, so that comparisons never mix naive and aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}
    # Every model maps one Table (DeclarativeBase only promises a FromClause): Core insert/update
    # and ``.c`` take ``Model.__table__`` as it is.
    __table__: ClassVar[Table]


class RawIntake(Base):
    """One input as received: mail bytes or a form payload, plus its processing state.

    ``source_key`` makes intake idempotent: the same IMAP UID, Maildir file or form token can
    only be stored once. ``state`` moves pending → done, or → held (an error, retried) →
    quarantined after too many attempts.
    """

    __tablename__ = "raw_intake"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    source_key: Mapped[str] = mapped_column(String(255), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[dict[str, Any] | None]
    tracking_no: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    auto: Mapped[str | None] = mapped_column(String(16))
    auto_reason: Mapped[str | None] = mapped_column(String(255))
    submission_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("submissions.id"))
    processed_at: Mapped[datetime | None]

    # A new row: every column an input is stored with, and its value when the source gives
    # none (channel and source_key every source gives; received_at None is the time of the
    # write). Both writers in storage/raw_intake.py (add/add_many, the web form's batch) are
    # built from this: a new column that inputs are stored with goes above and here, nowhere else.
    NEW_ROW: ClassVar[dict[str, Any]] = {
        "channel": None, "source_key": None, "raw": None, "payload": None, "message_id": None,
        "tracking_no": None, "received_at": None, "state": "pending", "attempts": 0,
        "error": None, "processed_at": None,
    }

    # The raw mail of one submission (console page, purge); migration 0004.
    # The raw rows holding a tracking number (storage.raw_intake.fresh_tracking_nos); 0008.
    __table_args__ = (Index("ix_raw_intake_submission", "submission_id"),
                      Index("ix_raw_intake_tracking_no", "tracking_no"))


class Submission(Base):
    """A citizen's message as staff see it."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tracking_no: Mapped[str] = mapped_column(String(32), unique=True)
    query_code_hash: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    from_name: Mapped[str | None] = mapped_column(String(255))
    from_addr: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    new_text: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    category: Mapped[str] = mapped_column(String(16), default="unclassified", index=True)
    measure: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    top: Mapped[dict[str, Any] | None]
    explanation: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))
    taxonomy_version: Mapped[str | None] = mapped_column(String(64))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # A 举报's confidentiality (SECURITY.md): content for supervisors and admins only. Set by
    # the writer's choice, the recall-tuned decision (handlers/classify/restrict.py) or staff;
    # not the same as kind == "report" (migration 0005).
    restricted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    restricted_by: Mapped[str | None] = mapped_column(String(16))  # writer, classifier, staff
    status: Mapped[str] = mapped_column(String(16), default=workflow.NEW, index=True)
    auto: Mapped[str | None] = mapped_column(String(16))
    flags: Mapped[dict[str, Any] | None]
    related_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("submissions.id"))
    assignee_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    forwarded_to: Mapped[str | None] = mapped_column(String(255))
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    rating_comment: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # The writer's address and phone in one spelling (handlers.repeats.sender_keys): the same
    # person across channels, for repeat letters (migration 0009).
    sender_addr_key: Mapped[str | None] = mapped_column(String(320))
    sender_phone_key: Mapped[str | None] = mapped_column(String(32))
    # 并单: the case this one was merged into (status "merged"; migration 0012).
    merged_into_id: Mapped[int | None] = mapped_column(BigId)
    # Casework (migration 0008, storage/workflow.py): the one extension, the forwarding unit's
    # due date, and the 复查 / 复核 stages. The clocks are computed from these dates.
    extended_days: Mapped[int | None] = mapped_column(Integer)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    forward_due: Mapped[date | None] = mapped_column(Date)
    review_requested_at: Mapped[datetime | None]
    review_answered_at: Mapped[datetime | None]
    recheck_requested_at: Mapped[datetime | None]
    recheck_answered_at: Mapped[datetime | None]
    # The forwarding unit's answer (办理结果) as staff recorded it, the basis of the answer to
    # the citizen; when the unit was reminded of its due date; the postal address typed in at
    # staff entry (migration 0011).
    unit_result: Mapped[str | None] = mapped_column(Text)
    unit_result_at: Mapped[datetime | None]
    unit_reminded_at: Mapped[datetime | None]
    postal_address: Mapped[str | None] = mapped_column(Text)
    # Urgent letters (issue #19, migration 0014): the mark and why (cue categories such as
    # "self_harm", never the letter's words), when and by whom it was marked (classifier,
    # staff), who took the alert ("我来处理") and when, and when the supervisors were alerted
    # because nobody had (bot/workers/urgent.py).
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    urgent_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    urgent_at: Mapped[datetime | None]
    urgent_by: Mapped[str | None] = mapped_column(String(16))
    urgent_taken_by: Mapped[str | None] = mapped_column(String(64))
    urgent_taken_at: Mapped[datetime | None]
    urgent_escalated_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_submissions_received_id", "received_at", "id"),
        # The digest's pipeline-health figures and the overdue filters.
        Index("ix_submissions_accepted_at", "accepted_at"),
        Index("ix_submissions_resolved_at", "resolved_at"),
        # Covering indexes of the weekly digest (migration 0003): its week and trend counts,
        # its overdue and forwarded counts (also the console's overdue filters), its ratings.
        Index("ix_submissions_week", "received_at", "auto", "category", "channel", "measure"),
        Index("ix_submissions_status_cover", "status", "received_at", "auto", "category",
              "accepted_at", "resolved_at", "updated_at", "restricted"),  # 0015: 举报 counted
        Index("ix_submissions_satisfaction", "satisfaction", "resolved_at", "auto", "category"),
        # Covers the console's per-category counts of the default view (auto IS NULL).
        Index("ix_submissions_auto_category", "auto", "category"),
        # One staff member's letters, newest first (migration 0004).
        Index("ix_submissions_assignee_received", "assignee_id", "received_at"),
        # The restricted letters, newest first (migration 0005).
        Index("ix_submissions_restricted_received", "restricted", "received_at"),
        # A sender's open cases (storage/repeats.py; migration 0009).
        Index("ix_submissions_sender_addr_key", "sender_addr_key", "status"),
        Index("ix_submissions_sender_phone_key", "sender_phone_key", "status"),
        # The extended cases, read apart by the digest's overdue count (migration 0013).
        Index("ix_submissions_extended", "extended_days"),
        # The unanswered cases by status, oldest accepted first: the digest's overdue list
        # (partial, so that only queries saying resolved_at IS NULL use it; migration 0016).
        Index("ix_submissions_unanswered", "status", "accepted_at",
              sqlite_where=sql_text("resolved_at IS NULL"),
              postgresql_where=sql_text("resolved_at IS NULL")),
        # The cases merged into one (the carrying case's page; migration 0012).
        Index("ix_submissions_merged_into", "merged_into_id"),
        # The urgent letters, newest first: the queue's pinned block (migration 0014).
        Index("ix_submissions_urgent_received", "urgent", "received_at"),
    )


class SubmissionLink(Base):
    """A letter linked to an earlier case it may repeat (并单): the same writer (``sender``) or
    near-duplicate text (``content``, ``score`` the Jaccard similarity). Migration 0009."""

    __tablename__ = "submission_links"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"))
    related_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"))
    kind: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("submission_id", "related_id", name="uq_submission_links_pair"),
        Index("ix_submission_links_related", "related_id"),
    )


class PublicReply(Base):
    """A resolved case's question and answer on the public page (公开答复, /replies): the text
    a supervisor checked after masking, published only with the citizen's consent and never
    for a 举报 (handlers/public_reply.py). Migration 0013."""

    __tablename__ = "public_replies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"))
    category: Mapped[str] = mapped_column(String(16))
    measure: Mapped[str | None] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("submission_id", name="uq_public_replies_submission"),
        Index("ix_public_replies_listed", "withdrawn_at", "category", "measure", "published_at"),
    )


class SubmissionTerms(Base):
    """The search terms of one submission (storage/search.py): its CJK character bigrams.

    Kept beside the submission, not in it, so that list queries do not read them. The lookup
    structures over it are made by migration 0002 only: on SQLite an FTS5 table with triggers,
    on PostgreSQL a GIN index on ``string_to_array(terms, ' ')``.
    """

    __tablename__ = "submission_terms"
    submission_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False,
    )
    terms: Mapped[str] = mapped_column(Text, default="")


class Attachment(Base):
    """A file that came with a submission; content on disk under its SHA-256, never executed."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"), index=True)
    followup_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("followups.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)


class Followup(Base):
    """A later message on the same matter: a reply by mail, or an addition from the status page."""

    __tablename__ = "followups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    from_addr: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    raw_intake_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("raw_intake.id"))
    received_at: Mapped[datetime]


class Outbox(Base):
    """A complete message waiting for delivery, and what became of it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # ack, reply, digest
    submission_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("submissions.id"))
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    sender: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    message: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Retried until then; None: created_at + smtp.retry_hours (migration 0007).
    retry_until: Mapped[datetime | None]
    # Claimed highest first: an urgent letter's alert goes before acknowledgements and digests
    # (handlers/urgent.py; migration 0014).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Due messages; one submission's messages (status page replies, purge; migration 0004);
    # what was sent lately, for the sending caps (migration 0007).
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),
                      Index("ix_outbox_submission", "submission_id"),
                      Index("ix_outbox_sent_at", "sent_at"))


class Notice(Base):
    """A notice (告知) to the citizen at a step of the case (migration 0008): 受理, 不予受理,
    延期, 转办, 答复意见, the 复查 / 复核 steps. Stored before it is sent anywhere, and shown on
    the status page in order whatever became of the mail (handlers/notices.py).

    ``text`` is the notice as the citizen reads it (mail, status page, print view alike);
    ``message_id`` is its mail's, None when it was not mailed (``not_mailed`` says why)."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(255))
    not_mailed: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class OutboxPause(Base):
    """The whole outbox waits: the provider throttles us (migration 0007). One row per sender
    (``name`` = "smtp"); ``strikes`` counts the pauses in a row, the backoff's exponent."""

    __tablename__ = "outbox_pause"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[datetime]
    since: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    strikes: Mapped[int] = mapped_column(Integer)


class Event(Base):
    """One line of a submission's history (and of the audit log)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("submissions.id"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]


class MailCursor(Base):
    """The last IMAP UID processed per (mailbox, UIDVALIDITY)."""

    __tablename__ = "mail_cursors"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity"),)


class Suppression(Base):
    """An address we must not mail for a while (a permanent bounce)."""

    __tablename__ = "suppressions"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime]


class Lease(Base):
    """A named lease (e.g. the mailbox poller) so that one instance of several does the work."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class User(Base):
    """A staff account of the console."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # reviewer, supervisor, admin
    password_hash: Mapped[str] = mapped_column(String(255))
    api_token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # Copied into a console session at sign-in and checked on every request: raising it
    # (sign-out, disable, enable, new password) ends every session of the account.
    session_gen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Where the morning reminder of the account's cases goes (migration 0011); None: none.
    email: Mapped[str | None] = mapped_column(String(320))


class Label(Base):
    """A staff-confirmed classification: what the classifier learns from."""

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(BigId, ForeignKey("submissions.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    measure: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    at: Mapped[datetime]


class ReminderRun(Base):
    """A staff member's morning reminder of one day, queued (migration 0011): the unique
    (day, user) makes the schedule idempotent, as the digest's unique week does."""

    __tablename__ = "reminder_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # the local day, YYYY-MM-DD
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    outbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outbox.id"))
    cases: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("day", "user_id", name="uq_reminder_runs_day_user"),)


class Digest(Base):
    """One weekly digest: the unique week makes sending it idempotent."""

    __tablename__ = "digests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    week: Mapped[str] = mapped_column(String(10), unique=True)  # ISO week, e.g. 2026-W47
    created_at: Mapped[datetime]
    outbox_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outbox.id"))
    summary: Mapped[dict[str, Any] | None]
    html: Mapped[str | None] = mapped_column(Text)
