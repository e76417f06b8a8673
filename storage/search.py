"""The search index of the staff console: CJK character bigrams of every submission.

Chinese has no spaces, and staff search mostly for two-character words (噪音, 拆迁, 信访), which a
trigram index (FTS5 ``trigram``, ``pg_trgm``) cannot serve. So, like Lucene's CJKAnalyzer, every
run of letters and digits in the subject and in the text is cut into overlapping character
bigrams (拆迁补偿 → 拆迁 迁补 补偿), lower-cased, de-duplicated, and kept space-separated in
``submission_terms`` (one row per submission, written here whenever subject or text change). A
query of two or more characters becomes "all its bigrams are present", which narrows a million
rows to a few candidates; the exact case-insensitive substring test in ``storage.review_list`` then
decides, so results are exactly those of the plain scan. That only holds if the index never
misses: the query and the document are folded and cut by the same two functions below, bigrams
are taken inside each field (never across subject and text), and Latin letters and digits are
cut into bigrams too (not into words), so "exec" still finds "executive" as the scan does.

How each backend looks the bigrams up (the tables and indexes are made by migration 0002):

- SQLite: an FTS5 table ``submission_terms_fts`` over ``submission_terms`` (external content,
  kept in sync by triggers), ``detail=none`` (we need which rows, not where), tokenizer
  ``ascii``: ASCII punctuation and spaces separate tokens and every non-ASCII character is part of
  one, so a term is indexed exactly as written here (``unicode61`` would also fold accents and
  follow SQLite's own Unicode tables).
- PostgreSQL: a GIN index on ``string_to_array(terms, ' ')``, queried with ``@>``: exact array
  elements, so no text-search parser, locale or tsvector size limit (1 MB) is involved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy import (
    Select,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import UpdateBase

from storage.models import SubmissionTerms
from storage.upsert import Bulk, dialect_module

FTS_TABLE = "submission_terms_fts"
_fts = table(FTS_TABLE, column("rowid"), column(FTS_TABLE))
# The index expression of ix_submission_terms_gin, spelled identically so the planner uses it; the
# separator is a literal, not a bound parameter, which a generic plan could not match.
_PG_TERMS = func.string_to_array(SubmissionTerms.terms, literal_column("' '"))


def _fold(ch: str) -> str:
    """Lower case, one character for one, so that positions (and bigrams) stay aligned.

    Only U+0130 (İ) lowers to two characters; PostgreSQL's ILIKE, like C's towlower, makes it
    "i", which is what the first character is.
    """
    low = ch.lower()
    return low[0] if low else ch


# Runs of letters and digits: ``\w`` is str.isalnum() and "_" (the re module's definition).
_RUN = re.compile(r"[^\W_]+")


def _fold_run(run: str) -> str:
    """:func:`_fold` of every character of a run. ``str.lower`` of the whole run is the same
    wherever it keeps the length, except for a capital sigma (lowered by its place in the word):
    then, and only then, character by character."""
    low = run.lower()
    if len(low) == len(run) and "\u03a3" not in run:
        return low
    return "".join(map(_fold, run))


def _runs(value: str) -> Iterator[str]:
    """Maximal runs of letters and digits (any script), folded."""
    return map(_fold_run, _RUN.findall(value))


def bigrams(value: str) -> list[str]:
    """Every two adjacent letters/digits of ``value``, folded, once each, in order of appearance.
    (By regular expression and slices: a loop over the characters cost 0.3 ms for a letter of
    500 characters, in the filing transaction.)"""
    seen: dict[str, None] = {}
    for run in _runs(value):
        seen.update(dict.fromkeys(map(str.__add__, run, run[1:])))
    return list(seen)


def terms_for(subject: str | None, text: str | None) -> str:
    """The term string stored for a submission: bigrams of subject and of text, per field."""
    seen = dict.fromkeys(bigrams(subject or ""))
    seen.update(dict.fromkeys(bigrams(text or "")))
    return " ".join(seen)


def query_terms(q: str) -> list[str]:
    """The bigrams a row must contain to possibly match ``q`` (empty: the index cannot help,
    e.g. a one-character query or one made of punctuation)."""
    return bigrams(q)


async def index(session: AsyncSession, submission_id: int, subject: str | None,
                text: str | None) -> None:
    """(Re)write the terms of one submission, in the caller's transaction."""
    await index_many(session, [(submission_id, subject, text)])


async def index_many(session: AsyncSession,
                     items: list[tuple[int, str | None, str | None]]) -> None:
    """(Re)write the terms of many submissions, (id, subject, text) each, in one executemany."""
    await _UPSERT_TERMS.run_in(session, [{"submission_id": sid, "terms": terms_for(subject, text)}
                                         for sid, subject, text in items])


def _upsert_terms(dialect: Dialect) -> UpdateBase:
    stmt = dialect_module(dialect).insert(SubmissionTerms.__table__).values(
        submission_id=bindparam("submission_id"), terms=bindparam("terms"))
    return stmt.on_conflict_do_update(index_elements=[SubmissionTerms.submission_id],
                                      set_={"terms": stmt.excluded.terms})


_UPSERT_TERMS = Bulk(_upsert_terms)  # a batch of new letters' terms: one driver executemany


def matching_ids(dialect: str, terms: list[str], limit: int | None = None) -> Select[tuple[int]]:
    """Ids of the submissions holding every one of ``terms`` (a subquery for ``IN``)."""
    if dialect == "sqlite":
        # Terms are letters and digits only, so quoting each one cannot break the FTS5 syntax.
        match = " AND ".join(f'"{t}"' for t in terms)
        stmt = select(_fts.c.rowid).where(_fts.c[FTS_TABLE].op("MATCH")(match))
    else:
        # One array parameter (not ARRAY[$1, $2, …]): the same statement whatever the term count.
        wanted = cast(bindparam("terms", terms, type_=ARRAY(Text), unique=True), ARRAY(Text))
        stmt = select(SubmissionTerms.submission_id).where(_PG_TERMS.op("@>")(wanted))
    return stmt if limit is None else stmt.limit(limit)


async def plan_per_query(session: AsyncSession) -> None:
    """On PostgreSQL, plan the rest of this transaction's statements with their values.

    asyncpg prepares every statement, and after five runs PostgreSQL may switch to a generic
    plan that cannot see the words: not knowing whether a word is rare (use the GIN index) or
    common, it chose a newest-first scan of every row, 0.3–0.8 s at 300,000 rows instead of
    10 ms. ``SET LOCAL`` ends with the transaction.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(sql_text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def count_matching(session: AsyncSession, terms: list[str], cap: int) -> int:
    """How many submissions hold every term, counting no further than ``cap``."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    sub = matching_ids(dialect, terms, limit=cap).subquery()
    return int(await session.scalar(select(func.count()).select_from(sub)) or 0)
