"""casework: the extension, the forwarding due date, 复查 / 复核, and the notices

- ``submissions``: ``extended_days`` and ``extension_reason`` (one extension of at most 30
  days, with a written reason), ``forward_due`` (the unit's due date when forwarded),
  ``review_requested_at`` / ``review_answered_at`` (复查) and ``recheck_requested_at`` /
  ``recheck_answered_at`` (复核). The clocks (storage/workflow.py) are computed from these.
- ``notices``: every notice (告知) given to a citizen, stored before it is mailed and shown on
  the status page in order.

Revision ID: 0010_casework
Revises: 0009_repeats
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_casework"
down_revision = "0009_repeats"
branch_labels = None
depends_on = None

_STAMPS = ("review_requested_at", "review_answered_at", "recheck_requested_at",
           "recheck_answered_at")


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable): on SQLite a batch would copy the whole submissions table.
    op.add_column("submissions", sa.Column("extended_days", sa.Integer(), nullable=True))
    op.add_column("submissions", sa.Column("extension_reason", sa.Text(), nullable=True))
    op.add_column("submissions", sa.Column("forward_due", sa.Date(), nullable=True))
    for name in _STAMPS:
        op.add_column("submissions",
                      sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "notices",
        sa.Column("id", id_type, primary_key=True),
        sa.Column("submission_id", id_type, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("not_mailed", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notices_submission_id", "notices", ["submission_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notices_submission_id", table_name="notices")
    op.drop_table("notices")
    with op.batch_alter_table("submissions") as batch:
        for name in ("extended_days", "extension_reason", "forward_due", *_STAMPS):
            batch.drop_column(name)
