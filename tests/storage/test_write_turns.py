"""SQLite write transactions of one process take turns instead of sleeping on a locked file."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import func, select

from storage import raw_intake
from storage.models import RawIntake


async def test_concurrent_writers_all_commit(db, db_url: str):
    async def writer(n: int) -> None:
        async with db.begin() as s:
            await raw_intake.add(s, channel="web", source_key=f"web:turn{n}",
                                 payload={"fields": {"body": str(n)}})
            await asyncio.sleep(0.01)  # hold the transaction open across an await

    await asyncio.gather(*(writer(n) for n in range(20)))
    async with db() as s:
        assert await s.scalar(select(func.count()).select_from(RawIntake)) == 20


async def test_a_write_inside_a_write_fails_at_once(db, db_url: str):
    """On SQLite the inner one would wait for the outer one to commit, i.e. forever."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL runs nested transactions side by side")
    async with db.begin():
        with pytest.raises(RuntimeError, match="inside another"):
            async with asyncio.timeout(2):
                async with db.begin():
                    pass


def _insert(conn, key: str, fail: bool = False) -> int:  # type: ignore[no-untyped-def]
    """A synchronous unit of work for ``run_write``."""
    conn.execute(RawIntake.__table__.insert(),
                 raw_intake.new_rows([{"channel": "web", "source_key": key}]))
    if fail:
        raise ValueError("rolled back")
    return int(conn.execute(select(func.count()).select_from(RawIntake)).scalar_one())


async def test_run_write_takes_turns_with_session_writers(db, db_url: str):
    """``run_write`` (on SQLite: a thread with its own connection) and ``begin()`` writers of
    the same process interleave without one failing on the other's lock."""
    async def session_writer(n: int) -> None:
        async with db.begin() as s:
            await raw_intake.add(s, channel="web", source_key=f"web:s{n}")
            await asyncio.sleep(0.005)

    results = await asyncio.gather(*(db.run_write(_insert, f"web:r{n}") for n in range(15)),
                                   *(session_writer(n) for n in range(15)))
    assert sorted(r for r in results if r is not None)[-1] <= 30
    async with db() as s:
        keys = set(await s.scalars(select(RawIntake.source_key)))
    assert keys == {f"web:r{n}" for n in range(15)} | {f"web:s{n}" for n in range(15)}


async def test_run_write_rolls_back_on_error(db, db_url: str):
    with pytest.raises(ValueError, match="rolled back"):
        await db.run_write(_insert, "web:gone", True)
    assert await db.run_write(_insert, "web:kept") == 1  # the failed row is not there


async def test_cancelled_run_write_still_commits_and_the_next_writer_follows(db, db_url: str):
    """The web form's batch is written for requests that may be cancelled (a citizen closes the
    page): the thread's work is committed all the same, and the next writer gets its turn."""
    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL run_write is an ordinary transaction, rolled back on cancel")

    def slow(conn) -> None:  # type: ignore[no-untyped-def]
        _insert(conn, "web:slow")
        time.sleep(0.3)

    task = asyncio.create_task(db.run_write(slow))
    await asyncio.sleep(0.05)
    task.cancel()
    async with db.begin() as s:
        await raw_intake.add(s, channel="web", source_key="web:after")
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db() as s:
        assert set(await s.scalars(select(RawIntake.source_key))) == {"web:slow", "web:after"}


async def _queued() -> None:
    """Let every task created so far run up to the point where it waits for its turn."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_form_batch_goes_before_workers_waiting_for_their_turn(db, db_url: str):
    """A citizen waits for ``run_write`` (the web form's batch); the workers' transactions queued
    before it wait one turn longer instead of holding the page up behind all of them."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL writers do not take turns")
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with db.begin() as s:
            await raw_intake.add(s, channel="web", source_key="web:holder")
            await release.wait()

    async def worker(n: int) -> None:
        async with db.begin() as s:
            order.append(f"worker{n}")
            await raw_intake.add(s, channel="web", source_key=f"web:w{n}")

    def form(conn) -> int:  # type: ignore[no-untyped-def]
        order.append("form")
        return _insert(conn, "web:form")

    held = asyncio.create_task(holder())
    await _queued()
    workers = [asyncio.create_task(worker(n)) for n in range(3)]
    await _queued()
    page = asyncio.create_task(db.run_write(form))
    await _queued()
    release.set()
    await asyncio.gather(held, page, *workers)
    assert order == ["form", "worker0", "worker1", "worker2"]


async def test_a_writer_cancelled_while_waiting_does_not_keep_the_turn(db, db_url: str):
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL writers do not take turns")
    release = asyncio.Event()

    async def holder() -> None:
        async with db.begin():
            await release.wait()

    async def writer(key: str) -> None:
        async with db.begin() as s:
            await raw_intake.add(s, channel="web", source_key=key)

    held = asyncio.create_task(holder())
    await _queued()
    gone, page = asyncio.create_task(writer("web:gone")), asyncio.create_task(
        db.run_write(_insert, "web:page"))
    later = asyncio.create_task(writer("web:later"))
    await _queued()
    gone.cancel()
    release.set()
    async with asyncio.timeout(10):
        await asyncio.gather(held, page, later)
    async with db() as s:
        assert set(await s.scalars(select(RawIntake.source_key))) == {"web:page", "web:later"}


async def _add(session, key: str) -> None:  # type: ignore[no-untyped-def]
    await raw_intake.add(session, channel="web", source_key=key)


async def test_run_transaction_commits_a_unit_of_async_storage_calls(db, db_url: str):
    """The intake's filing transaction: storage functions written for an ``AsyncSession``
    (execute, scalars, get, add and flush), committed together, or not at all on an error."""
    async def work(session) -> int:  # type: ignore[no-untyped-def]
        await _add(session, "web:a")
        await _add(session, "web:b")
        claimed = await raw_intake.claim(session, [1, 2, 99])
        row = await raw_intake.get(session, min(claimed))
        assert row is not None
        return len(claimed)

    assert await db.run_transaction(work) == 2

    async def failing(session) -> None:  # type: ignore[no-untyped-def]
        await _add(session, "web:c")
        raise ValueError("rolled back")

    with pytest.raises(ValueError, match="rolled back"):
        await db.run_transaction(failing)
    async with db() as s:
        assert set(await s.scalars(select(RawIntake.source_key))) == {"web:a", "web:b"}
        assert all(r.processed_at is not None for r in await s.scalars(select(RawIntake)))


async def test_the_pages_go_on_while_a_filing_transaction_runs(db, db_url: str):
    """On SQLite the transaction runs whole in the writing thread, not on the event loop: a
    request handled on the loop is answered while the transaction is still under way (here the
    transaction waits for it, which on the loop would never end)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL the transaction is an ordinary AsyncSession's")
    answered = threading.Event()

    async def request() -> None:
        await asyncio.sleep(0)
        answered.set()

    async def work(session) -> bool:  # type: ignore[no-untyped-def]
        await _add(session, "web:during")
        asyncio.run_coroutine_threadsafe(request(), loop)
        return answered.wait(timeout=10)

    loop = asyncio.get_running_loop()
    assert await db.run_transaction(work) is True
    async with db() as s:
        assert set(await s.scalars(select(RawIntake.source_key))) == {"web:during"}


async def test_a_transaction_run_at_once_may_not_wait_for_the_event_loop(db, db_url: str):
    """Awaiting anything but the session inside would hang the writing thread's turn: it is
    refused and rolled back."""
    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL the transaction is an ordinary AsyncSession's")

    async def work(session) -> None:  # type: ignore[no-untyped-def]
        await _add(session, "web:waited")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited for the event loop"):
        await db.run_transaction(work)
    async with db() as s:
        assert list(await s.scalars(select(RawIntake.source_key))) == []


async def test_a_failed_write_in_the_thread_does_not_quote_the_letter(db, db_url: str):
    """A failing statement's exception is logged and stored (intake errors): in run_write's
    thread, as through the async engine, it must not carry the bound values, a letter's text
    among them."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    secret = "举报某所长收钱压案不办"

    def clash(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(text("CREATE TABLE IF NOT EXISTS t_once (body TEXT UNIQUE)"))
        for _ in range(2):
            conn.execute(text("INSERT INTO t_once (body) VALUES (:body)"), {"body": secret})

    with pytest.raises(IntegrityError) as failed:
        await db.run_write(clash)
    assert secret not in str(failed.value)


async def test_an_inline_write_runs_on_the_event_loop_and_commits(db, db_url: str):
    """The web form's batch under a rush: on a SQLite file it runs on the loop's own thread
    (a thread would wait for the interpreter after each statement), and is committed."""
    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL run_write is an ordinary transaction")
    ran_on: list[int] = []

    def form(conn) -> int:  # type: ignore[no-untyped-def]
        ran_on.append(threading.get_ident())
        return _insert(conn, "web:inline")

    assert await db.run_write(form, inline=True) == 1
    assert ran_on == [threading.get_ident()]
    async with db() as s:
        assert list(await s.scalars(select(RawIntake.source_key))) == ["web:inline"]


async def test_an_inline_write_waits_in_the_thread_for_another_process_lock(db, db_url: str,
                                                                             tmp_path):
    """Another process (a CLI command) holding SQLite's write lock must not stall the event
    loop: the inline attempt gives up at once and the write waits in the thread, then commits."""
    import sqlite3

    from storage.db import sqlite_file

    path = sqlite_file(db_url)
    if path is None:
        pytest.skip("only a SQLite file has other processes' locks")
    async with db() as s:  # the service is up: its connections have set the file to WAL
        assert await s.scalar(select(func.count()).select_from(RawIntake)) == 0
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # SQLite's write lock, held
    ran_on: list[int] = []

    def form(conn) -> int:  # type: ignore[no-untyped-def]
        ran_on.append(threading.get_ident())
        return _insert(conn, "web:behind")

    task = asyncio.create_task(db.run_write(form, inline=True))
    async with asyncio.timeout(10):
        while len(ran_on) < 2:  # tried inline, now waiting in the thread
            await asyncio.sleep(0.01)
    assert not task.done()
    other.execute("COMMIT")
    other.close()
    async with asyncio.timeout(10):
        assert await task == 1
    assert ran_on[0] == threading.get_ident() and ran_on[1] != threading.get_ident()
    async with db() as s:
        assert list(await s.scalars(select(RawIntake.source_key))) == ["web:behind"]
