"""repeats: a sender's normalised keys and the links between repeat letters (并单, issue #20)

- ``submissions.sender_addr_key`` / ``submissions.sender_phone_key``: the writer's e-mail address
  and phone number in one spelling (``handlers.repeats.sender_keys``), so that the same person
  is found across channels (a letter by mail, a call, a web form). Indexed for the lookup of a
  sender's open cases. Existing rows stay NULL until the service fills them (the spelling is
  computed in ``handlers``, which a migration must not import); purge blanks them.
- ``submission_links``: a letter linked to an earlier case it may repeat: ``kind`` ``sender``
  (the same writer) or ``content`` (near-duplicate text, ``score`` its Jaccard similarity), one
  row per pair, the newer letter first. Links of a 举报 are as confidential as its content
  (SECURITY.md): readers filter on each case's ``restricted``.

Revision ID: 0009_repeats
Revises: 0008_raw_intake_tracking_no
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_repeats"
down_revision = "0008_raw_intake_tracking_no"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): on SQLite a batch would copy the whole submissions table.
    op.add_column("submissions", sa.Column("sender_addr_key", sa.String(320), nullable=True))
    op.add_column("submissions", sa.Column("sender_phone_key", sa.String(32), nullable=True))
    op.create_index("ix_submissions_sender_addr_key", "submissions",
                    ["sender_addr_key", "status"], unique=False)
    op.create_index("ix_submissions_sender_phone_key", "submissions",
                    ["sender_phone_key", "status"], unique=False)
    op.create_table(
        "submission_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("submission_id", BigId, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("related_id", BigId, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("submission_id", "related_id", name="uq_submission_links_pair"),
    )
    op.create_index("ix_submission_links_related", "submission_links", ["related_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_submission_links_related", table_name="submission_links")
    op.drop_table("submission_links")
    op.drop_index("ix_submissions_sender_phone_key", table_name="submissions")
    op.drop_index("ix_submissions_sender_addr_key", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("sender_phone_key")
        batch.drop_column("sender_addr_key")
