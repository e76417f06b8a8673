"""raw intake tracking numbers: the draw of a new number looks up the raw rows holding it

``ix_raw_intake_tracking_no``: a web letter holds its tracking number from the moment it is
stored, before it is filed. ``storage.raw_intake.fresh_tracking_nos`` (the web form's batch and
the store step) refuses a number any raw row holds; without this index that lookup read every
unfiled row for each batch (2 ms per form batch with 5000 letters waiting, against 0.08 ms).

Revision ID: 0008_raw_intake_tracking_no
Revises: 0007_outbox_pause
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008_raw_intake_tracking_no"
down_revision = "0007_outbox_pause"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_raw_intake_tracking_no", "raw_intake", ["tracking_no"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_raw_intake_tracking_no", table_name="raw_intake")
