"""The queue queries on both backends: filters, Chinese substring search, keyset pages, counts,
and the staff-confirmed labels the classifier learns from."""

from __future__ import annotations

from datetime import timedelta

from storage import labels, submissions
from storage import review_list as queue
from storage.db import utcnow
from storage.review_list import QueueFilter


async def _add(session, n: int, **fields):
    now = utcnow()
    base = {"tracking_no": f"FK-TEST-{n:04d}", "channel": "web", "subject": f"来信{n}",
            "text": "普通来信内容", "received_at": now - timedelta(days=n)}
    return await submissions.add(session, **{**base, **fields})


async def test_filters_search_and_default_view(db):
    async with db.begin() as s:
        await _add(s, 1, text="法院执行局的电话一直没人接", category="3")
        await _add(s, 2, text="派出所办事效率低", category="5", kind="complaint")
        await _add(s, 3, text="自动回复：我正在休假", auto="auto-reply")
        await _add(s, 4, text="优惠发票代开", category="spam", kind="spam")
        await _add(s, 5, text="打折100%优惠_活动", category="3")
        # Restricted though the classifier called it a complaint: the column decides.
        await _add(s, 6, text="举报某执行局干部收受红包", category="3", kind="complaint",
                   restricted=True, restricted_by="writer")
        await _add(s, 20, text="很久以前的来信", category="3", status="new")
    async with db() as s:
        async def nos(**kw):
            rows, _ = await queue.page(s, QueueFilter(**kw))
            return [r.tracking_no[-2:] for r in rows]

        assert await nos() == ["01", "02", "05", "06", "20"]  # no auto-reply, no spam
        assert await nos(view="auto") == ["03"]
        assert await nos(view="spam") == ["04"]
        assert await nos(q="执行局") == ["01"]  # the report is not searched for reviewers
        assert await nos(q="执行局", search_restricted=False) == ["01", "06"]
        assert await nos(q="100%") == ["05"]  # % is literal, not a wildcard
        assert await nos(q="%") == ["05"]
        assert await nos(q="_") == ["05"]
        assert await nos(q="fk-test-0002") == ["02"]  # exact tracking number, any case
        assert await nos(category="5") == ["02"]
        assert await nos(kind="complaint") == ["02", "06"]
        assert await nos(restricted_only=True) == ["06"]
        assert await nos(overdue=True) == ["20"]  # new and past the 15-day acceptance limit
        assert await nos(received_from=utcnow() - timedelta(days=2, hours=12)) == ["01", "02"]
        counts = await queue.category_counts(s, QueueFilter(category="5"))
        assert counts == {"3": 4, "5": 1}  # counts ignore the category filter itself


async def test_keyset_pages_cover_everything_once_in_order(db):
    same = utcnow() - timedelta(hours=1)
    async with db.begin() as s:
        for n in range(1, 8):
            await _add(s, n, received_at=same if n % 2 else utcnow() - timedelta(minutes=n))
    seen = []
    cursor = None
    async with db() as s:
        while True:
            rows, cursor = await queue.page(s, QueueFilter(), after=cursor, limit=3)
            seen.extend(rows)
            if cursor is None:
                break
    keys = [(r.received_at, r.id) for r in seen]
    assert len(seen) == 7 and len({r.id for r in seen}) == 7
    assert keys == sorted(keys, reverse=True)


async def test_confirmed_examples_latest_label_per_submission(db, db_url: str):
    async with db.begin() as s:
        a = await _add(s, 1, text="全文", new_text="新写的内容", category="3")
        b = await _add(s, 2, text="另一封来信")
        await labels.confirm(s, a, category="4", measure="4.1", kind="complaint", user_id=None)
        await labels.confirm(s, a, category="5", measure=None, kind="inquiry", user_id=None)
        await labels.confirm(s, b, category="spam", measure=None, kind="spam", user_id=None)
    examples = labels.confirmed_examples(db_url)
    assert examples == [
        {"subject": "来信1", "body": "新写的内容", "category": "5", "measure": None,
         "kind": "inquiry", "taxonomy_version": None},
        {"subject": "来信2", "body": "另一封来信", "category": "spam", "measure": None,
         "kind": "spam", "taxonomy_version": None},
    ]
    async with db() as s:
        sub = await queue.get(s, a.id)
    assert sub is not None and sub.category == "5" and not sub.needs_review
