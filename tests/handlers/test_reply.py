"""A staff reply as the citizen receives it: threaded under the acknowledgement they got (or
their letter, when none went out), signed, marked as written by a person."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from bot.runtime import mail_templates
from handlers import reply, tracking
from handlers.step import Context, LoopPolicy
from storage import outbox, submissions

SECRET = b"s" * 32


def _ctx(session) -> Context:  # type: ignore[no-untyped-def]
    return Context(session=session, secret=SECRET, public_url="https://fk.example.cn",
                   from_addr="ntzfwjgdw@163.com", from_name="市委政法委",
                   loop_policy=LoopPolicy(own_addresses=frozenset(), secret=SECRET),
                   templates=mail_templates(), message_id_domain="fk.example.cn")


async def _letter(session, message_id: str):  # type: ignore[no-untyped-def]
    return await submissions.add(
        session, tracking_no=tracking.new_tracking_no(), channel="email", from_name="王女士",
        from_addr="wang.citizen@qq.com", subject="小区路灯坏了", message_id=message_id,
        received_at=datetime(2026, 3, 2, tzinfo=UTC))


async def test_the_reply_threads_under_the_ack_and_carries_the_staff_text(db) -> None:  # type: ignore[no-untyped-def]
    async with db.begin() as session:
        sub = await _letter(session, "letter-1@qq.com")
        ack_id = tracking.signed_message_id(SECRET, "ack", sub.tracking_no, "fk.example.cn")
        await outbox.enqueue(session, purpose="ack", recipient=sub.from_addr,
                             sender="ntzfwjgdw@163.com", message_id=ack_id, message=b"x",
                             submission_id=sub.id)
        message_id, data = await reply.build(_ctx(session), sub, "路灯已于三月五日修复，请您核实。")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Message-ID"] == f"<{message_id}>"
    assert tracking.verify_message_id(SECRET, message_id) == sub.tracking_no
    assert msg["In-Reply-To"] == f"<{ack_id}>"
    assert msg["References"] == f"<letter-1@qq.com> <{ack_id}>"
    assert msg["Auto-Submitted"] == "no"
    assert "wang.citizen@qq.com" in msg["To"]
    assert sub.tracking_no in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert "路灯已于三月五日修复" in text
    assert tracking.query_code_for(SECRET, sub.tracking_no) in text


async def test_without_an_ack_the_reply_threads_under_the_letter(db) -> None:  # type: ignore[no-untyped-def]
    async with db.begin() as session:
        sub = await _letter(session, "letter-2@qq.com")
        _message_id, data = await reply.build(_ctx(session), sub, "已转交有关部门。")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["In-Reply-To"] == "<letter-2@qq.com>" and msg["References"] == "<letter-2@qq.com>"
