"""restriction: a 举报's confidentiality becomes a column of its own

Until now a letter was confidential (content for supervisors and admins only) exactly when the
classifier's ``kind`` said ``report``; on held-out letters that caught only about half of the
real 举报. The restriction is now its own fact, set by the writer (the form's 举报 choice), by a
recall-tuned decision over the classifier's scores and the letter's words, or by staff:

- ``submissions.restricted``: boolean, not null, false by default;
- ``submissions.restricted_by``: ``writer``, ``classifier`` or ``staff`` (null when not
  restricted, or when staff lifted it: the events say who and why);
- ``ix_submissions_restricted_received``: the supervisors' list of restricted letters, newest
  first.

Existing letters keep exactly the confidentiality they had: restricted where kind is
``report``, attributed to staff where a staff label says so, otherwise to the classifier.

Revision ID: 0005_restriction
Revises: 0004_lookup_indexes
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_restriction"
down_revision = "0004_lookup_indexes"
branch_labels = None
depends_on = None

INDEX = ("ix_submissions_restricted_received", ["restricted", "received_at"])


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("restricted", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("restricted_by", sa.String(16), nullable=True))
    # The same statement on SQLite and PostgreSQL (a correlated EXISTS, no dialect syntax).
    op.execute(sa.text(
        "UPDATE submissions SET restricted = :yes, restricted_by = CASE WHEN EXISTS ("
        " SELECT 1 FROM labels WHERE labels.submission_id = submissions.id"
        " AND labels.kind = 'report') THEN 'staff' ELSE 'classifier' END"
        " WHERE kind = 'report'").bindparams(yes=True))
    op.create_index(INDEX[0], "submissions", INDEX[1], unique=False)


def downgrade() -> None:
    op.drop_index(INDEX[0], table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("restricted_by")
        batch.drop_column("restricted")
