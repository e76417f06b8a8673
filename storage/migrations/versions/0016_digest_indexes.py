"""the digest's oldest unanswered cases read in order from a partial index

The weekly digest lists the 100 cases longest overdue in handling: ``status IN (accepted,
in_progress, forwarded) AND resolved_at IS NULL AND accepted_at < ? ORDER BY accepted_at LIMIT
100`` (storage.digests.late_cases). SQLite (no ANALYZE) read it by ``resolved_at IS NULL``, every
unanswered case with a table lookup, and sorted them all: 0.4–0.5 s at a million rows. This
index holds only the unanswered cases, by (status, accepted_at): each status's oldest are the
first entries of its range, so the query reads about a hundred rows (1 ms). Being partial, it
serves only queries that say ``resolved_at IS NULL``, and leaves every other plan as it was.

Plain CREATE INDEX: ``feedback-bot db upgrade`` runs before the new version starts (seconds at
a million rows).

Revision ID: 0016_digest_indexes
Revises: 0015_status_cover_restricted
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_digest_indexes"
down_revision = "0015_status_cover_restricted"
branch_labels = None
depends_on = None

NAME = "ix_submissions_unanswered"
# Spelled out, not imported from storage.models: a shipped migration must not drift.
UNANSWERED = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_index(NAME, "submissions", ["status", "accepted_at"], unique=False,
                    sqlite_where=UNANSWERED, postgresql_where=UNANSWERED)


def downgrade() -> None:
    op.drop_index(NAME, table_name="submissions")
