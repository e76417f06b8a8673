"""The console's search on both backends: the bigram index (storage/search.py) must find exactly
what the plain case-insensitive substring scan finds, for two-character words, longer ones, Latin,
digits and LIKE wildcards; purged text leaves the index; reports stay unsearchable for reviewers;
migration 0002 indexes the rows already there and can be undone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, inspect, text

from storage import retention, search, submissions
from storage import review_list as queue
from storage.db import alembic_config, make_engine, sessionmaker, upgrade, utcnow
from storage.models import Base, Submission
from storage.review_list import QueueFilter
from testing.postgres import Postgres


async def _add(session, n: int, subject: str = "", text: str = "", **fields) -> Submission:
    base = {"tracking_no": f"FK-TEST-{n:04d}", "channel": "web", "subject": subject,
            "text": text, "received_at": utcnow() - timedelta(minutes=n)}
    return await submissions.add(session, **{**base, **fields})


async def _found(session, q: str, **kw) -> list[int]:
    """Numbers (n of _add) of what the console lists for ``q``, newest first."""
    rows, _ = await queue.page(session, QueueFilter(q=q, **kw), limit=500)
    return [int(r.tracking_no[-4:]) for r in rows]


LETTERS = {
    1: ("拆迁补偿", "拆迁补偿款一直没有发放，我们去信访了三次。"),
    2: ("噪音扰民", "工地夜间施工噪音很大。"),
    3: ("执行", "法院执行局的电话一直没人接。"),
    4: ("", "银行局面复杂，强制执行很难。"),  # 执行 and 行局, but not 执行局
    5: ("WiFi in the Library", "Email from ZHANG Wei about the wifi password."),
    6: ("案件编号", "我的案件第4321号至今没有结果。"),
    7: ("优惠", "打折100%优惠_活动，路径C:\\temp"),
}


async def _letters(db) -> None:
    async with db.begin() as s:
        for n, (subject, body) in LETTERS.items():
            await _add(s, n, subject, body)


async def test_words_of_two_and_more_characters(db):
    await _letters(db)
    async with db() as s:
        assert await _found(s, "拆迁") == [1]
        assert await _found(s, "迁补") == [1]  # any substring, not only dictionary words
        assert await _found(s, "信访") == [1]
        assert await _found(s, "噪音") == [2]
        assert await _found(s, "补拆") == []
        assert await _found(s, "执行") == [3, 4]
        assert await _found(s, "执行局") == [3]  # 4 has both bigrams, not the word
        assert await _found(s, "法院执行局的电话") == [3]
        assert await _found(s, "执行电话") == []


async def test_latin_digits_and_mixed(db):
    await _letters(db)
    async with db() as s:
        assert await _found(s, "wifi") == [5]
        assert await _found(s, "WIFI") == [5]
        assert await _found(s, "ifi") == [5]  # inside a word, as the scan finds it
        assert await _found(s, "zhang wei") == [5]
        assert await _found(s, "Wei about") == [5]
        assert await _found(s, "第4321号") == [6]
        assert await _found(s, "4321号") == [6]
        assert await _found(s, "第432号") == []
        assert await _found(s, "  噪音  ") == [2]  # surrounding spaces ignored
        assert await _found(s, "噪\x00音") == [2]  # a NUL (PostgreSQL refuses it) is dropped


async def test_one_character_and_like_wildcards(db):
    await _letters(db)
    async with db() as s:
        assert await _found(s, "噪") == [2]  # no bigram: the scan
        assert await _found(s, "0%") == [7]
        assert await _found(s, "%优") == [7]
        assert await _found(s, "_活") == [7]
        assert await _found(s, "%") == [7]
        assert await _found(s, "\\t") == [7]
        assert await _found(s, "1_0") == []  # _ is a character, not "any character"
        assert await _found(s, "打%惠") == []


async def test_words_do_not_cross_subject_and_text(db):
    async with db.begin() as s:
        await _add(s, 1, "噪音", "扰民")
    async with db() as s:
        assert await _found(s, "噪音") == [1]
        assert await _found(s, "扰民") == [1]
        assert await _found(s, "音扰") == []
        assert await _found(s, "噪音扰民") == []


async def test_changed_text_is_searched_by_its_new_words(db):
    async with db.begin() as s:
        sub = await _add(s, 1, "来信", "噪音扰民")
    async with db.begin() as s:
        await queue.update_fields(s, sub.id, text="拆迁补偿")
    async with db() as s:
        assert await _found(s, "拆迁") == [1]
        assert await _found(s, "噪音") == []


async def test_counts_match_the_list(db):
    await _letters(db)
    async with db.begin() as s:
        await _add(s, 8, "执行", "执行难", category="3")
        await _add(s, 9, "执行", "执行难", category="spam")
    async with db() as s:
        counts = await queue.category_counts(s, QueueFilter(q="执行"))
        assert counts == {"unclassified": 2, "3": 1}  # spam stays out of the default view
        assert await queue.count(s, QueueFilter(q="执行", category="3")) == 1
        assert await queue.count(s, QueueFilter(q="执行局")) == 1


async def test_purge_removes_the_text_from_search(db):
    async with db.begin() as s:
        old = await _add(s, 1, "拆迁", "拆迁补偿，王某某，电话13800000000", status="resolved")
        await _add(s, 2, "拆迁", "拆迁补偿")
    async with db.begin() as s:
        await retention.purge_submission(s, old.id, 1095)
    async with db() as s:
        assert await _found(s, "拆迁补偿") == [2]
        assert await _found(s, "王某某") == []
        # Nor does the index keep quoting it (name, phone): it holds personal data too.
        for gone in ("王某某", "13800000000", "拆迁补偿"):
            hits = await s.scalars(search.matching_ids(s.bind.dialect.name,
                                                       search.query_terms(gone)))
            assert old.id not in set(hits), gone


async def test_reports_are_not_searchable_by_reviewers(db):
    async with db.begin() as s:
        await _add(s, 1, "举报", "举报某执行局干部收受红包", kind="complaint", restricted=True)
        await _add(s, 2, "投诉", "执行局干部态度差", kind="report")  # restriction lifted
    async with db() as s:
        assert await _found(s, "执行局") == [2]
        assert await _found(s, "红包") == []
        assert await queue.count(s, QueueFilter(q="红包")) == 0
        assert await _found(s, "执行局", search_restricted=False) == [1, 2]
        assert await _found(s, "红包", search_restricted=False) == [1]
        assert await _found(s, "fk-test-0001") == [1]  # its tracking number still finds it


async def test_keyset_pages_of_a_search_cover_every_match_once(db):
    async with db.begin() as s:
        for n in range(1, 12):
            await _add(s, n, "来信", "信访" if n % 3 else "其他")
    seen: list[int] = []
    cursor = None
    async with db() as s:
        while True:
            rows, cursor = await queue.page(s, QueueFilter(q="信访"), after=cursor, limit=3)
            seen += [int(r.tracking_no[-4:]) for r in rows]
            if cursor is None:
                break
    assert seen == [n for n in range(1, 12) if n % 3]


# Letters in both cases, digits, CJK, LIKE's special characters and spaces; no "-", so that no
# query looks like a tracking number. Only ASCII letters have case: SQLite's lower() folds ASCII
# alone, and this test states the semantics both backends share. A small alphabet, so that letters
# often hold every bigram of a query without holding the query.
ALPHABET = "拆迁补aAbB1 %_\\，"
field = st.text(alphabet=ALPHABET, max_size=16)


@st.composite
def substrings(draw: st.DrawFn, rows: list[tuple[str, str]]) -> str:
    """A piece of one of the letters, in its own case or with the case swapped."""
    value = draw(st.sampled_from([f for pair in rows for f in pair]))
    a = draw(st.integers(0, len(value)))
    piece = value[a:draw(st.integers(a, len(value)))]
    return piece.swapcase() if draw(st.booleans()) else piece


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(field, field), min_size=1, max_size=10), data=st.data(),
       cap=st.sampled_from([1, 5000]))
def test_search_equals_substring_semantics(db_url: str, rows, data, cap: int):
    """Random letters and queries (most cut out of the letters): the ids the console finds are
    exactly those whose subject or text holds the query, case-insensitively, whether a word is
    taken as rare (index) or common (``cap`` 1: the page scans, SQLite still counts by index)."""
    queries = data.draw(st.lists(substrings(rows), min_size=4, max_size=8))
    queries += data.draw(st.lists(st.text(alphabet=ALPHABET, min_size=2, max_size=4),
                                  max_size=6))
    asyncio.run(_compare(db_url, rows, queries, cap))


async def _compare(db_url: str, rows: list[tuple[str, str]], queries: list[str],
                   cap: int) -> None:
    engine = make_engine(db_url)
    saved, queue.INDEX_CAP = queue.INDEX_CAP, cap
    try:
        sessions = sessionmaker(engine)
        async with sessions.begin() as s:
            await s.execute(delete(Submission))  # the terms go with them (ON DELETE CASCADE)
            ids = [(await _add(s, n, subject, body)).id for n, (subject, body) in enumerate(rows)]
        async with sessions() as s:
            for q in queries:
                needle = q.strip().lower()
                if not needle:
                    continue
                want = sorted(i for i, (subj, body) in zip(ids, rows, strict=True)
                              if needle in subj.lower() or needle in body.lower())
                listed, _ = await queue.page(s, QueueFilter(q=q), limit=100)
                assert sorted(r.id for r in listed) == want, q
                assert await queue.count(s, QueueFilter(q=q)) == len(want), q
                counts = await queue.category_counts(s, QueueFilter(q=q))
                assert sum(counts.values()) == len(want), q
    finally:
        queue.INDEX_CAP = saved
        await engine.dispose()


# ---------------------------------------------------------------- migration 0002


def _fresh_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/migrate.db"
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.create_database(f"m_{uuid.uuid4().hex[:12]}")


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_upgrade_indexes_existing_rows_and_downgrade_removes_the_index(
        request: pytest.FixtureRequest, backend: str, tmp_path: Path):
    url = _fresh_url(request, backend, tmp_path)
    upgrade(url, "0001")
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:  # rows written before this version existed
            for n, (subject, body) in LETTERS.items():
                await conn.execute(text(
                    "INSERT INTO submissions (tracking_no, channel, subject, text, category, "
                    "needs_review, status, received_at, created_at, updated_at) VALUES "
                    "(:tn, 'web', :subject, :body, 'unclassified', false, 'new', :at, :at, :at)"),
                    {"tn": f"FK-TEST-{n:04d}", "subject": subject, "body": body,
                     "at": utcnow() - timedelta(minutes=n)})
    finally:
        await engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    try:
        async with sessionmaker(engine)() as s:
            assert await _found(s, "执行局") == [3]
            assert await _found(s, "噪音") == [2]
            assert await _found(s, "4321号") == [6]
    finally:
        await engine.dispose()

    command.downgrade(alembic_config(url), "0001")
    tables = await _tables(url)
    assert "submissions" in tables
    assert not {t for t in tables if t.startswith("submission_terms")}
    upgrade(url)  # and up again, from the downgraded schema
    engine = make_engine(url)
    try:
        async with sessionmaker(engine)() as s:
            assert await _found(s, "执行局") == [3]
    finally:
        await engine.dispose()


# What migration 0002 makes outside Base.metadata on purpose: the FTS5 table (and the shadow
# tables SQLite keeps for it) and the GIN expression index on PostgreSQL.
MIGRATION_ONLY = ("submission_terms_fts", "ix_submission_terms_gin")


def _migration_only(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    return not (name or "").startswith(MIGRATION_ONLY)


async def test_models_match_the_migrations(db_url: str):
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"include_object": _migration_only}),
                Base.metadata))
    finally:
        await engine.dispose()
    assert diff == []


def _bigrams_char_by_char(value: str) -> list[str]:
    """The index's definition spelled out: runs of str.isalnum() characters, each character
    lowered on its own (its first character), adjacent pairs once each in order."""
    runs, run = [], ""
    for ch in value + " ":
        if ch.isalnum():
            run += (ch.lower() or ch)[0]
        elif run:
            runs.append(run)
            run = ""
    return list(dict.fromkeys(r[i:i + 2] for r in runs for i in range(len(r) - 1)))


@pytest.mark.unit
@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(
    "拆迁补偿噪音ABab09０ＡａΣσςΟΔİIıßẞﬁǅ_-.，。 \n٣\u0301\u0345")) | st.characters(),
    max_size=40))
def test_bigrams_fold_each_character_on_its_own(value: str) -> None:
    """A capital sigma lowers by its place in a word and İ to two characters in str.lower():
    the index folds character by character, as the exact test after it does."""
    assert search.bigrams(value) == _bigrams_char_by_char(value)


@pytest.mark.unit
def test_bigrams_of_a_final_sigma_and_a_dotted_capital_i() -> None:
    assert search.bigrams("ΟΔΟΣ") == ["οδ", "δο", "οσ"]  # σ, not the final ς
    assert search.bigrams("İstanbul_2") == ["is", "st", "ta", "an", "nb", "bu", "ul"]
