"""repeat merge: a case merged (并单) into another points at the case that carries it on

- ``submissions.merged_into_id``: set when staff merge the case into another (status
  ``merged``, storage/workflow.py); the merged case's status page shows the carrying case's
  progress, its later follow-ups alert that case, and the carrying case's page lists it.
  Indexed: "the cases merged into this one" is read on every letter page.

Revision ID: 0012_repeat_merge
Revises: 0011_casework_units
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_repeat_merge"
down_revision = "0011_casework_units"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no constraint): on SQLite a batch would copy the whole
    # submissions table; the application writes only ids it has just read.
    op.add_column("submissions", sa.Column("merged_into_id", BigId, nullable=True))
    op.create_index("ix_submissions_merged_into", "submissions", ["merged_into_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_submissions_merged_into", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("merged_into_id")
