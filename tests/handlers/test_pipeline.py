"""The pipeline is one list: every step module's ``STEP`` is in ``PIPELINE`` once, and the look-ahead
(``pipeline.prepare``) runs the steps' database-free halves in that order, leaving to the filing
transaction any input one of them fails on."""

from __future__ import annotations

import ast
import importlib
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from bot.runtime import mail_templates
from handlers import pipeline
from handlers.step import Context, Intake, LoopPolicy

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
SECRET = b"k" * 32


def _exports_step(path: Path) -> bool:
    tree = ast.parse(path.read_bytes())
    return any(isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "STEP" for t in node.targets) for node in tree.body)


def test_every_step_module_is_listed_once():
    modules = sorted(".".join(p.relative_to(HANDLERS.parent).with_suffix("").parts)
                     for p in HANDLERS.rglob("*.py") if _exports_step(p))
    steps = [importlib.import_module(m).STEP for m in modules]
    assert sorted(map(id, steps)) == sorted(map(id, pipeline.PIPELINE))
    assert [s.name for s in pipeline.PIPELINE] == ["parse", "loop-guard", "classify", "store",
                                                   "urgent", "acknowledge"]


def _mail(sender: str, subject: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"读者 <{sender}>"
    msg["To"] = "ntzfwjgdw@163.com"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{sender.replace('@', '.')}.1@mail.example>"
    for name, value in headers.items():
        msg[name] = value
    msg.set_content("小区门口的路灯坏了一个多月，晚上出行很不方便，请尽快修复。")
    return bytes(msg)


def _ctx() -> Context:
    return Context(session=None,  # type: ignore[arg-type]  # prepare needs no database
                   secret=SECRET, public_url="https://fk.example.cn",
                   from_addr="ntzfwjgdw@163.com", from_name="市委政法委",
                   loop_policy=LoopPolicy(own_addresses=frozenset({"ntzfwjgdw@163.com"}),
                                          secret=SECRET),
                   templates=mail_templates(), message_id_domain="fk.example.cn")


def test_prepare_runs_each_half_and_leaves_a_failing_input_to_the_transaction():
    now = datetime.now(UTC)
    citizen = Intake(raw_id=1, channel="email", received_at=now,
                     raw=_mail("li.citizen@qq.com", "路灯坏了"))
    machine = Intake(raw_id=2, channel="email", received_at=now,
                     raw=_mail("away@example.com", "自动回复：路灯坏了",
                               **{"Auto-Submitted": "auto-replied"}))
    # A form payload whose fields are not a mapping: the parse half fails on it.
    broken = Intake(raw_id=3, channel="web", received_at=now, form=["not", "a", "mapping"])  # type: ignore[arg-type]
    pipeline.prepare([citizen, machine, broken], _ctx())

    every = {s.name for s in pipeline.PIPELINE if s.prepare is not None}
    assert citizen.ahead.done == every
    assert citizen.tracking_no and citizen.ahead.tracking_drawn
    assert citizen.ahead.ack_draft is not None
    assert citizen.ahead.ack_draft.tracking_no == citizen.tracking_no
    ack = BytesParser(policy=policy.default).parsebytes(citizen.ahead.ack_draft.message)
    assert citizen.tracking_no in ack["Subject"] and ack["To"].addresses[0].addr_spec == \
        "li.citizen@qq.com"
    # machine mail is judged ahead but gets no number and no acknowledgement
    assert machine.ahead.done == every and machine.auto == "auto-reply"
    assert machine.tracking_no is None and machine.ahead.ack_draft is None
    # the broken input is left whole to the transaction, which meets its error again
    assert broken.ahead.done == set()
    assert broken.tracking_no is None and broken.ahead.ack_draft is None
