"""Category counts beside a search: exact while the word is not too common; past that, counted
over the newest letters only, and the caller is told over how many."""

from __future__ import annotations

from datetime import timedelta

from storage import review_list as queue
from storage import submissions
from storage.db import utcnow
from storage.review_list import QueueFilter


async def _fill(db) -> None:
    """Twelve letters about 信访, newest first: 0-3 category 1, 4-11 category 2; and two others."""
    async with db.begin() as s:
        for n in range(12):
            await submissions.add(
                s, tracking_no=f"FK-CNT-{n:04d}", channel="web", subject="",
                text=f"第{n}封：信访件一直没有答复。", category="1" if n < 4 else "2",
                received_at=utcnow() - timedelta(minutes=n))
        for n in (12, 13):
            await submissions.add(s, tracking_no=f"FK-CNT-{n:04d}", channel="web", subject="",
                                  text="路灯坏了。", category="3",
                                  received_at=utcnow() - timedelta(minutes=n))


async def test_counts_are_exact_for_a_word_below_the_cap(db):
    await _fill(db)
    async with db() as s:
        counts, sampled = await queue.list_counts(s, QueueFilter(q="信访"))
    assert (counts, sampled) == ({"1": 4, "2": 8}, None)


async def test_a_very_common_word_is_counted_over_the_newest_letters(db, monkeypatch):
    await _fill(db)
    monkeypatch.setattr(queue, "EXACT_COUNT_CAP", 5)
    monkeypatch.setattr(queue, "SAMPLE_ROWS", 6)
    async with db() as s:
        counts, sampled = await queue.list_counts(s, QueueFilter(q="信访"))
        assert sampled == 6 and counts == {"1": 4, "2": 2}  # letters 0-5
        # the list itself still has every match
        rows, _ = await queue.page(s, QueueFilter(q="信访"), limit=50)
        assert len(rows) == 12
        # other filters still apply to the sample
        counts, sampled = await queue.list_counts(s, QueueFilter(q="信访", status="resolved"))
        assert counts == {} and sampled == 6
