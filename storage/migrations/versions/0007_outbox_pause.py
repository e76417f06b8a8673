"""outbox pause: the provider's throttling, the retry window, the sending caps

- ``outbox_pause``: one row per sender ("smtp") while the relay throttles us (smtp.163.com's
  ``554 DT:SPM``, ``450 RP:…``, "frequency limited"): until when the whole outbox waits, why,
  and how many pauses in a row (the backoff's exponent). Kept in the database so that a restart
  or a second instance does not hammer a provider that asked us to stop.
- ``outbox.retry_until``: a message is retried until then (set when staff resend a failed one;
  otherwise ``created_at`` plus ``smtp.retry_hours``).
- ``ix_outbox_sent_at``: the sending caps (``smtp.max_per_minute`` / ``max_per_day``) count the
  messages sent in the last minute and day.

Revision ID: 0007_outbox_pause
Revises: 0006_session_generation
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_pause"
down_revision = "0006_session_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_pause",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("strikes", sa.Integer(), nullable=False),
    )
    # A plain ADD COLUMN (nullable): on SQLite a batch would copy the whole outbox table.
    op.add_column("outbox", sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_sent_at", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("retry_until")
    op.drop_table("outbox_pause")
