"""public replies (公开答复), and an index on the extension for the digest's overdue counts

- ``public_replies``: a resolved case's question and answer as published on the public page
  (/replies), after a supervisor checked the masked text; one row per case, ``withdrawn_at``
  set when it is taken down.
- ``ix_submissions_extended``: the few extended cases, read apart by the digest's overdue count
  (storage.digests.late_cases) instead of looking up every overdue row.

Revision ID: 0013_public_replies
Revises: 0012_repeat_merge
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_public_replies"
down_revision = "0012_repeat_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "public_replies",
        sa.Column("id", id_type, primary_key=True),
        sa.Column("submission_id", id_type, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("measure", sa.String(16), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("submission_id", name="uq_public_replies_submission"),
    )
    op.create_index("ix_public_replies_listed", "public_replies",
                    ["withdrawn_at", "category", "measure", "published_at"])
    op.create_index("ix_submissions_extended", "submissions", ["extended_days"])


def downgrade() -> None:
    op.drop_index("ix_submissions_extended", table_name="submissions")
    op.drop_index("ix_public_replies_listed", table_name="public_replies")
    op.drop_table("public_replies")
