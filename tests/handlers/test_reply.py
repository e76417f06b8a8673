"""A staff reply as the citizen receives it: threaded, signed, marked as written by a person."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from bot.runtime import mail_templates
from handlers import reply, tracking
from handlers.step import Context, LoopPolicy
from storage.models import Submission

SECRET = b"s" * 32


def _ctx() -> Context:
    return Context(session=None,  # type: ignore[arg-type]  # build() needs no database
                   secret=SECRET, public_url="https://fk.example.cn",
                   from_addr="ntzfwjgdw@163.com", from_name="市委政法委",
                   loop_policy=LoopPolicy(own_addresses=frozenset(), secret=SECRET),
                   templates=mail_templates(), message_id_domain="fk.example.cn")


def test_the_reply_threads_under_the_letter_and_carries_the_staff_text() -> None:
    sub = Submission(id=7, tracking_no=tracking.new_tracking_no(), from_name="王女士",
                     from_addr="wang.citizen@qq.com", subject="小区路灯坏了",
                     message_id="letter-1@qq.com", received_at=datetime(2026, 3, 2, tzinfo=UTC))
    message_id, data = reply.build(_ctx(), sub, "路灯已于三月五日修复，请您核实。")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Message-ID"] == f"<{message_id}>"
    assert tracking.verify_message_id(SECRET, message_id) == sub.tracking_no
    assert msg["In-Reply-To"] == "<letter-1@qq.com>"
    assert msg["Auto-Submitted"] == "no"
    assert "wang.citizen@qq.com" in msg["To"]
    assert sub.tracking_no in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert "路灯已于三月五日修复" in text
    assert tracking.query_code_for(SECRET, sub.tracking_no) in text
