"""search terms: the console's Chinese full-text index (storage/search.py)

Adds ``submission_terms`` (the CJK bigrams of each submission), fills it for the rows already
there, and builds the lookup structure over it: on SQLite an FTS5 table kept in sync by triggers,
on PostgreSQL a GIN index on the terms as an array.

Revision ID: 0002_search_terms
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from storage.search import terms_for

revision = "0002_search_terms"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 2000
FTS_TABLE = "submission_terms_fts"  # spelled out: a shipped migration must not drift

# External content: the FTS5 table keeps only the index, the terms live in submission_terms.
_SQLITE_FTS = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(terms, content='submission_terms', "
    "content_rowid='submission_id', tokenize='ascii', detail='none')"
)
# The three triggers FTS5's documentation gives for an external content table.
_SQLITE_TRIGGERS = {
    "submission_terms_ai": f"""
        CREATE TRIGGER submission_terms_ai AFTER INSERT ON submission_terms BEGIN
          INSERT INTO {FTS_TABLE}(rowid, terms) VALUES (new.submission_id, new.terms);
        END""",
    "submission_terms_ad": f"""
        CREATE TRIGGER submission_terms_ad AFTER DELETE ON submission_terms BEGIN
          INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, terms)
          VALUES ('delete', old.submission_id, old.terms);
        END""",
    "submission_terms_au": f"""
        CREATE TRIGGER submission_terms_au AFTER UPDATE ON submission_terms BEGIN
          INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, terms)
          VALUES ('delete', old.submission_id, old.terms);
          INSERT INTO {FTS_TABLE}(rowid, terms) VALUES (new.submission_id, new.terms);
        END""",
}
_PG_INDEX = (
    "CREATE INDEX ix_submission_terms_gin ON submission_terms "
    "USING gin (string_to_array(terms, ' '))"
)


def _backfill(bind: sa.Connection) -> None:
    """Terms for every existing submission, in batches (one copy of the rule: terms_for)."""
    last = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT id, subject, text FROM submissions WHERE id > :last "
                    "ORDER BY id LIMIT :n"), {"last": last, "n": BATCH}).all()
        if not rows:
            return
        bind.execute(
            sa.text("INSERT INTO submission_terms (submission_id, terms) VALUES (:id, :terms)"),
            [{"id": sid, "terms": terms_for(subject, text)} for sid, subject, text in rows])
        last = rows[-1][0]


def upgrade() -> None:
    op.create_table(
        "submission_terms",
        sa.Column("submission_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("submission_id"),
    )
    bind = op.get_bind()
    _backfill(bind)
    if bind.dialect.name == "sqlite":
        op.execute(_SQLITE_FTS)
        op.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        for ddl in _SQLITE_TRIGGERS.values():
            op.execute(ddl)
    else:
        op.execute(_PG_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    else:
        op.execute("DROP INDEX IF EXISTS ix_submission_terms_gin")
    op.drop_table("submission_terms")
