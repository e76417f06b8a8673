"""Raw intake rows: an earlier processed copy of the same mail is found by its Message-ID."""

from __future__ import annotations

from storage import raw_intake, submissions


async def test_message_ids_done_finds_only_a_processed_copy(db):
    async with db.begin() as s:
        first = await raw_intake.add(s, channel="email", source_key="a", raw=b"x",
                                     message_id="<m1@example.com>")
        await raw_intake.add(s, channel="email", source_key="b", raw=b"x",
                             message_id="<m1@example.com>")
        await raw_intake.add(s, channel="email", source_key="c", raw=b"y",
                             message_id="<m2@example.com>")
    wanted = ["<m1@example.com>", "<m2@example.com>"]
    async with db() as s:  # the first copy is not processed yet: not a duplicate
        assert await raw_intake.message_ids_done(s, wanted) == {}
    async with db.begin() as s:
        sub = await submissions.add(s, tracking_no="FK-DUPE-0001", channel="email",
                                    subject="", text="来信")
        await raw_intake.mark_done(s, first, submission_id=sub.id)
    async with db() as s:  # the copies of m1 still waiting are duplicates of it; m2 is new
        assert await raw_intake.message_ids_done(s, wanted) == {"<m1@example.com>": sub.id}
