"""casework units: the unit's answer, its reminder, staff entry's address, reminder runs

- ``submissions``: ``unit_result`` / ``unit_result_at`` (the forwarding unit's answer, 办理结果,
  recorded by staff: the basis of the answer to the citizen), ``unit_reminded_at`` (the unit
  was reminded of its due date; cleared when the case is forwarded again), ``postal_address``
  (a letter's or caller's postal address, typed in at staff entry; on the print view).
- ``users.email``: where a staff member's morning reminder goes.
- ``reminder_runs``: one row per (day, staff member) whose morning reminder was queued, in the
  same transaction as its outbox row, so a restart or a second instance never sends it twice.

Revision ID: 0011_casework_units
Revises: 0010_casework
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_casework_units"
down_revision = "0010_casework"
branch_labels = None
depends_on = None

_COLUMNS = ("unit_result", "unit_result_at", "unit_reminded_at", "postal_address")


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable): on SQLite a batch would copy the whole submissions table.
    op.add_column("submissions", sa.Column("unit_result", sa.Text(), nullable=True))
    op.add_column("submissions",
                  sa.Column("unit_result_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("submissions",
                  sa.Column("unit_reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("submissions", sa.Column("postal_address", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("email", sa.String(320), nullable=True))
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "reminder_runs",
        sa.Column("id", id_type, primary_key=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("user_id", id_type, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("outbox_id", id_type, sa.ForeignKey("outbox.id"), nullable=True),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("day", "user_id", name="uq_reminder_runs_day_user"),
    )


def downgrade() -> None:
    op.drop_table("reminder_runs")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
    with op.batch_alter_table("submissions") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
