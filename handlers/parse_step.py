"""Pipeline step 1: turn the raw input into sender, subject and text.

Mail is parsed by :mod:`handlers.parse`; a form payload (web form, staff data entry) already has
its fields. Either way the later steps see the same Intake fields.
"""

from __future__ import annotations

from handlers.pipeline import Context, Intake
from handlers.text import one_line


def _from_form(intake: Intake) -> None:
    form = intake.form or {}
    intake.from_name = one_line(form.get("name"), 100) or None
    intake.from_addr = (form.get("email") or "").strip().lower() or None
    intake.phone = (form.get("phone") or "").strip() or None
    intake.subject = one_line(form.get("subject"), 200)
    intake.text = (form.get("body") or "").strip()
    intake.new_text = intake.text


async def process(intake: Intake, ctx: Context) -> None:
    if intake.raw is None:
        _from_form(intake)
        return
    from handlers.parse import parse_message

    parsed = parse_message(intake.raw, max_bytes=ctx.max_message_bytes)
    intake.parsed = parsed
    intake.from_name = parsed.from_name
    intake.from_addr = parsed.from_addr
    intake.subject = parsed.subject
    intake.text = parsed.text
    intake.new_text = parsed.new_text or parsed.text
    intake.message_id = parsed.message_id
    if parsed.defects:
        intake.flags["defects"] = parsed.defects
    if parsed.oversized:
        intake.flags["oversized"] = True
