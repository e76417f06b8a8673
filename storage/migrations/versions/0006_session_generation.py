"""session generation: console sessions that the server can end

A console session lives in an encrypted cookie; without a server-side mark, signing out,
disabling and re-enabling an account, or a new password left every earlier cookie working when
replayed. ``users.session_gen`` is copied into the session at sign-in and compared on every
request; raising it ends every session of that account.

Revision ID: 0006_session_generation
Revises: 0005_restriction
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_session_generation"
down_revision = "0005_restriction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_gen", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_gen")
