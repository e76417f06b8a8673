"""urgent letters (issue #19): the mark, why, who took the alert, and the outbox's priority

- ``submissions.urgent`` (indexed with ``received_at``: the queue's pinned block and filter),
  ``urgent_reasons`` (cue categories such as ``self_harm``; never words of the letter),
  ``urgent_at`` (when it was marked: the escalation clock starts there), ``urgent_by``
  (classifier or staff), ``urgent_taken_by`` / ``urgent_taken_at`` (who said "我来处理"),
  ``urgent_escalated_at`` (the supervisors were alerted).
- ``outbox.priority``: alerts (higher) are claimed before acknowledgements and digests.

Revision ID: 0014_urgent
Revises: 0013_public_replies
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_urgent"
down_revision = "0013_public_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("submissions", sa.Column("urgent", sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    op.add_column("submissions", sa.Column("urgent_reasons", sa.JSON(), nullable=True))
    for name in ("urgent_at", "urgent_taken_at", "urgent_escalated_at"):
        op.add_column("submissions", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("submissions", sa.Column("urgent_by", sa.String(16), nullable=True))
    op.add_column("submissions", sa.Column("urgent_taken_by", sa.String(64), nullable=True))
    op.create_index("ix_submissions_urgent_received", "submissions", ["urgent", "received_at"])
    op.add_column("outbox", sa.Column("priority", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("priority")
    op.drop_index("ix_submissions_urgent_received", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        for name in ("urgent_escalated_at", "urgent_taken_at", "urgent_taken_by", "urgent_by",
                     "urgent_at", "urgent_reasons", "urgent"):
            batch.drop_column(name)
