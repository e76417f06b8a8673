"""the digest's overdue count reads ``restricted`` from its covering index

The overdue figures count the open cases by status, and apart the 举报 (``restricted``) among
them. ``restricted`` came after ``ix_submissions_status_cover`` (migration 0003), so that count
read the table for each of the open cases: 3.6 s of the digest's SQL at a million rows with
570,000 open (bench/digest_build.py). The index is rebuilt with ``restricted`` at its end; its
prefix (status, received_at, ...) and every query using it stay as they were.

Plain DROP/CREATE INDEX: ``feedback-bot db upgrade`` runs before the new version starts, so the
write lock (seconds at a million rows) falls in the upgrade's downtime.

Revision ID: 0015_status_cover_restricted
Revises: 0014_urgent
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015_status_cover_restricted"
down_revision = "0014_urgent"
branch_labels = None
depends_on = None

NAME = "ix_submissions_status_cover"
# Spelled out, not imported from storage.models: a shipped migration must not drift.
BEFORE = ["status", "received_at", "auto", "category", "accepted_at", "resolved_at", "updated_at"]
AFTER = [*BEFORE, "restricted"]


def upgrade() -> None:
    op.drop_index(NAME, table_name="submissions")
    op.create_index(NAME, "submissions", AFTER, unique=False)


def downgrade() -> None:
    op.drop_index(NAME, table_name="submissions")
    op.create_index(NAME, "submissions", BEFORE, unique=False)
