"""digest indexes: covering indexes for the weekly digest's figures

The digest's figures read a week (volumes), twelve weeks (trend), the open cases (overdue), the
forwarded cases of a week and every rating; at a million rows each was a range scan with a table
lookup per row (6–8 s of SQL in all). These three indexes hold every column those queries read,
so each becomes an index-only range scan:

- ``ix_submissions_week``: the week's and the trend's grouped counts, by received_at;
- ``ix_submissions_status_cover``: overdue and forwarded counts, by status then received_at. It
  starts with the columns of ``ix_submissions_status_received``, which it replaces (the console's
  overdue filters use the same prefix);
- ``ix_submissions_satisfaction``: the all-time ratings, only the rated rows.

Plain CREATE INDEX: ``feedback-bot db upgrade`` runs before the new version starts, so the short
write lock (seconds at a million rows) falls in the upgrade's downtime.

Revision ID: 0003_digest_indexes
Revises: 0002_search_terms
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003_digest_indexes"
down_revision = "0002_search_terms"
branch_labels = None
depends_on = None

# Spelled out, not imported from storage.models: a shipped migration must not drift.
INDEXES = {
    "ix_submissions_week": ["received_at", "auto", "category", "channel", "measure"],
    "ix_submissions_status_cover": ["status", "received_at", "auto", "category", "accepted_at",
                                    "resolved_at", "updated_at"],
    "ix_submissions_satisfaction": ["satisfaction", "resolved_at", "auto", "category"],
}
REPLACED = ("ix_submissions_status_received", ["status", "received_at"])


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "submissions", columns, unique=False)
    op.drop_index(REPLACED[0], table_name="submissions")


def downgrade() -> None:
    op.create_index(REPLACED[0], "submissions", REPLACED[1], unique=False)
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="submissions")
