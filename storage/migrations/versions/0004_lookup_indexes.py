"""lookup indexes: the rows of one submission, and one staff member's queue

Three lookups read a whole table at a million rows for want of an index:

- ``ix_raw_intake_submission``: the raw mail shown on a submission's console page, and purge;
- ``ix_outbox_submission``: the replies on the citizen's status page, and purge;
- ``ix_submissions_assignee_received``: "my letters" in the console, newest first (a staff
  member holds a small share of all letters, so the received_at walk read most of the table).

Revision ID: 0004_lookup_indexes
Revises: 0003_digest_indexes
Create Date: 2026-11-25
"""

from alembic import op

revision = "0004_lookup_indexes"
down_revision = "0003_digest_indexes"
branch_labels = None
depends_on = None

# Spelled out, not imported from storage.models: a shipped migration must not drift.
INDEXES = (
    ("ix_raw_intake_submission", "raw_intake", ["submission_id"]),
    ("ix_outbox_submission", "outbox", ["submission_id"]),
    ("ix_submissions_assignee_received", "submissions", ["assignee_id", "received_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
