"""Group commit of the public form (bot/web/form_writer.py) through the running service's port.

SQLite and PostgreSQL. To make letters wait for the writer at a known moment, another connection
holds the write lock on ``raw_intake`` (as a long transaction elsewhere would): the writer's INSERT
waits, the POSTs that arrive meanwhile queue up, and releasing the lock lets them through as one
batch. To make one row fail, the database itself refuses it: a trigger rejects any payload that
carries a marker (no column of raw_intake has a rule that a validated form could break, which is
why the test adds one, as a DBA could).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from bot.app import Service, start
from bot.web.form_writer import WRITER, FormWriter
from storage.db import is_sqlite, make_engine, sessionmaker
from storage.models import RawIntake, Submission
from testing.smtp import SmtpSink
from tests.bot.citizen.steps import client, lookup, query_code
from tests.bot.helpers import filed, form_token, tracking_no
from tests.conftest import make_settings

LETTER = "小区门口的路灯坏了一个多月，晚上出行很不方便，希望尽快修好。"
REFUSED = "REFUSE-ME"
LIMITS = {"submits_per_hour": 10_000, "lookups_per_hour": 10_000}


@pytest.fixture
async def service(db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> AsyncIterator[Service]:
    svc = await start(make_settings(db_url, tmp_path, smtp_sink, web=LIMITS))
    try:
        yield svc
    finally:
        await svc.stop()


def writer(service: Service) -> FormWriter:
    return service.runner.app[WRITER]


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def writes_blocked(service: Service) -> AsyncIterator[None]:
    """Another connection holds the write lock on raw_intake until the block ends."""
    db_url = service.runtime.settings.database.url
    async with service.runtime.sessions() as s:  # the service's first connection has
        await s.execute(select(func.count()).select_from(RawIntake))  # switched SQLite to WAL
    if is_sqlite(db_url):
        con = sqlite3.connect(str(make_url(db_url).database), isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            con.execute("ROLLBACK")
            con.close()
        return
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("LOCK TABLE raw_intake IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()


async def refuse_marked_payloads(db_url: str) -> None:
    """A database rule that rejects any raw row whose payload carries REFUSED."""
    if is_sqlite(db_url):
        with contextlib.closing(sqlite3.connect(str(make_url(db_url).database))) as con:
            con.execute(f"""CREATE TRIGGER refuse_marked BEFORE INSERT ON raw_intake
                WHEN NEW.payload LIKE '%{REFUSED}%'
                BEGIN SELECT RAISE(ABORT, 'payload refused'); END""")
        return
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"""CREATE FUNCTION refuse_marked() RETURNS trigger
                LANGUAGE plpgsql AS $$ BEGIN
                  IF NEW.payload::text LIKE '%{REFUSED}%' THEN
                    RAISE EXCEPTION 'payload refused' USING ERRCODE = 'check_violation';
                  END IF;
                  RETURN NEW;
                END $$"""))
            await conn.execute(text("""CREATE TRIGGER refuse_marked BEFORE INSERT ON raw_intake
                FOR EACH ROW EXECUTE FUNCTION refuse_marked()"""))
    finally:
        await engine.dispose()


async def post(http: aiohttp.ClientSession, base_url: str, token: str, body: str = LETTER
               ) -> tuple[int, str, dict[str, str]]:
    async with http.post(f"{base_url}/feedback", data={"token": token, "body": body}) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


def source_key(token: str) -> str:
    return f"web:{token.split('.')[0]}"


async def rows_by_key(db_url: str) -> dict[str, RawIntake]:
    """The raw rows as the database holds them, through a connection of its own."""
    engine = make_engine(db_url)
    try:
        async with sessionmaker(engine)() as s:
            return {r.source_key: r for r in await s.scalars(select(RawIntake))}
    finally:
        await engine.dispose()


async def test_many_concurrent_posts_each_stored_once_filed_and_found(service: Service):
    async with aiohttp.ClientSession() as http:
        tokens = [await form_token(http, service.base_url) for _ in range(40)]
        answers = await asyncio.gather(
            *(post(http, service.base_url, t, f"{LETTER}（第 {i} 封）") for i, t in enumerate(tokens)))
    assert [status for status, _, _ in answers] == [200] * 40
    numbers = [tracking_no(html) for _, html, _ in answers]
    assert len(set(numbers)) == 40

    rows = await rows_by_key(service.runtime.settings.database.url)
    assert len(rows) == 40
    for i, (token, tn) in enumerate(zip(tokens, numbers, strict=True)):
        row = rows[source_key(token)]
        assert row.tracking_no == tn and row.payload["fields"]["body"].endswith(f"（第 {i} 封）")

    await filed(service)
    async with service.runtime.sessions() as s:
        filed_numbers = set(await s.scalars(select(Submission.tracking_no)))
    assert filed_numbers == set(numbers)
    for (_, html, _), tn in zip(answers, numbers, strict=True):
        async with client() as http:
            resp = await lookup(http, service.base_url, tn, query_code(html))
            assert resp.status == 303
            async with http.get(f"{service.base_url}/status") as page:
                assert f'id="tracking-number">{tn}<' in await page.text()


async def test_same_form_twice_in_one_batch_is_one_row_with_one_number(service: Service):
    url = service.runtime.settings.database.url
    async with aiohttp.ClientSession() as http:
        first, twice = await form_token(http, service.base_url), await form_token(http, service.base_url)
        async with writes_blocked(service):
            ahead = asyncio.ensure_future(post(http, service.base_url, first))
            await until(lambda: writer(service).waiting == 1)  # its batch waits for the lock
            both = asyncio.gather(post(http, service.base_url, twice),
                                  post(http, service.base_url, twice))
            await until(lambda: writer(service).waiting == 3)  # both queued for the next batch
        answers = await both
        await ahead
    assert [status for status, _, _ in answers] == [200, 200]
    assert tracking_no(answers[0][1]) == tracking_no(answers[1][1])
    rows = await rows_by_key(url)
    assert len(rows) == 2 and rows[source_key(twice)].tracking_no == tracking_no(answers[0][1])
    await filed(service)
    async with service.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Submission)) == 2


async def test_a_row_the_database_refuses_fails_alone(service: Service):
    url = service.runtime.settings.database.url
    await refuse_marked_payloads(url)
    async with aiohttp.ClientSession() as http:
        first = await form_token(http, service.base_url)
        tokens = [await form_token(http, service.base_url) for _ in range(8)]
        bodies = [f"{LETTER} {REFUSED}" if i == 4 else LETTER for i in range(8)]
        async with writes_blocked(service):
            ahead = asyncio.ensure_future(post(http, service.base_url, first))
            await until(lambda: writer(service).waiting == 1)
            batch = asyncio.gather(*(post(http, service.base_url, t, b)
                                     for t, b in zip(tokens, bodies, strict=True)))
            await until(lambda: writer(service).waiting == 9)  # the eight wait as one batch
        answers = await batch
        assert (await ahead)[0] == 200
    refused_status, refused_html, refused_headers = answers[4]
    assert refused_status == 503 and refused_headers["Retry-After"] == "60"
    assert "系统繁忙" in refused_html and "没有成功保存" in refused_html
    assert "tracking-number" not in refused_html
    others = [a for i, a in enumerate(answers) if i != 4]
    assert [status for status, _, _ in others] == [200] * 7
    rows = await rows_by_key(url)
    assert source_key(tokens[4]) not in rows and len(rows) == 8
    for token, (_, html, _) in zip(tokens, answers, strict=True):
        if token != tokens[4]:
            assert rows[source_key(token)].tracking_no == tracking_no(html)


async def post_then_stop(service: Service, n: int,
                         stopped: Callable[[], bool]) -> tuple[list[str], list]:
    """Post ``n`` letters while their commit is held back, stop the service once all of them
    wait, and keep the database locked until ``stopped``; (tokens, answers or exceptions)."""
    stopping: asyncio.Future[None] | None = None
    try:
        async with aiohttp.ClientSession() as http:
            tokens = [await form_token(http, service.base_url) for _ in range(n)]
            async with writes_blocked(service):
                posts = asyncio.gather(*(post(http, service.base_url, t) for t in tokens),
                                       return_exceptions=True)
                await until(lambda: writer(service).waiting == n)
                stopping = asyncio.ensure_future(service.stop())
                await until(stopped)
            answers = await posts
    finally:
        await (stopping if stopping is not None else service.stop())
    return tokens, answers


async def test_shutdown_answers_every_waiting_letter(db_url: str, tmp_path: Path,
                                                  smtp_sink: SmtpSink):
    """Letters waiting for their commit when the service stops are committed and answered;
    none is stored without its answer, none is answered without being stored."""
    service = await start(make_settings(db_url, tmp_path, smtp_sink, web=LIMITS))
    tokens, answers = await post_then_stop(
        service, 12, lambda: not service.runner.sites)  # no new connections now
    rows = await rows_by_key(db_url)
    for token, answer in zip(tokens, answers, strict=True):
        assert not isinstance(answer, BaseException), answer
        status, html, _ = answer
        assert status == 200, html
        assert rows[source_key(token)].tracking_no == tracking_no(html)
    assert len(rows) == 12


async def test_shutdown_past_the_grace_period_loses_no_letter(db_url: str, tmp_path: Path,
                                                             smtp_sink: SmtpSink):
    """The database stays locked longer than aiohttp waits for running requests: those requests
    are cancelled (the connection drops, no number is shown), and the writer, closed after them,
    still stores every letter it held. Sending the same form again shows the stored number."""
    settings = make_settings(db_url, tmp_path, smtp_sink, web=LIMITS)
    service = await start(settings)
    tokens, answers = await post_then_stop(
        service, 6, lambda: writer(service).waiting == 0)  # every request cancelled
    for answer in answers:
        assert isinstance(answer, aiohttp.ClientError) or "tracking-number" not in answer[1]
    rows = await rows_by_key(db_url)
    assert {source_key(t) for t in tokens} == set(rows)

    again = await start(settings)
    try:
        async with aiohttp.ClientSession() as http:
            status, html, _ = await post(http, again.base_url, tokens[-1])
    finally:
        await again.stop()
    assert status == 200 and tracking_no(html) == rows[source_key(tokens[-1])].tracking_no
