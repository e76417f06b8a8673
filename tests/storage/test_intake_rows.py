"""Raw intake rows: an earlier processed copy of the same mail is found by its Message-ID."""

from __future__ import annotations

from storage import intake as raw_intake
from storage import submissions


async def test_message_id_done_finds_only_a_processed_copy(db):
    async with db.begin() as s:
        first = await raw_intake.add(s, channel="email", source_key="a", raw=b"x",
                                     message_id="<m1@example.com>")
        second = await raw_intake.add(s, channel="email", source_key="b", raw=b"x",
                                      message_id="<m1@example.com>")
        other = await raw_intake.add(s, channel="email", source_key="c", raw=b"y",
                                     message_id="<m2@example.com>")
    async with db() as s:  # the first copy is not processed yet: not a duplicate
        assert await raw_intake.message_id_done(s, "<m1@example.com>", second) is None
    async with db.begin() as s:
        sub = await submissions.add(s, tracking_no="FK-DUPE-0001", channel="email",
                                    subject="", text="来信")
        await raw_intake.mark_done(s, first, submission_id=sub.id)
    async with db() as s:
        assert await raw_intake.message_id_done(s, "<m1@example.com>", second) == sub.id
        assert await raw_intake.message_id_done(s, "<m1@example.com>", first) is None  # itself
        assert await raw_intake.message_id_done(s, "<m2@example.com>", other) is None
