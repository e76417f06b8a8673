"""Rendering the digest: the plain-text and HTML bodies, and the complete mail per recipient.

Both bodies come from ``templates/email/digest.{txt,html}`` and the same :class:`Figures`, so the
text alternative carries the same numbers as the HTML. The chart travels as an inline image
referenced by Content-ID (RFC 2392, ``cid:``), the week's XLSX as an attachment; the mail itself
is built by :func:`handlers.mail.compose.build` like every other mail we send. For the console the HTML
is stored with the chart as a ``data:`` URI, so that one row is a self-contained page.
"""

from __future__ import annotations

import base64
from email.utils import parseaddr
from typing import Any

import jinja2

from handlers import tracking
from handlers.digest.figures import Figures
from handlers.mail import compose
from storage.digests import Message

CHART_CID_LOCAL = "trend-chart"
CHART_CATEGORIES = 5
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def subject_of(f: Figures) -> str:
    year, number = f.week.split("-W")
    first, last = f.first_day.split("-"), f.last_day.split("-")
    span = f"{int(first[1])}月{int(first[2])}日—{int(last[1])}月{int(last[2])}日"
    return f"【每周简报】{year}年第{int(number)}周群众来信情况（{span}）"


def _signed(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"+{value}" if value > 0 else str(value)


def _days(value: float | None) -> str:
    return "暂无" if value is None else f"{value} 天"


def _values(f: Figures, subject: str, chart_src: str, xlsx_rows: int, accept_days: int,
            handle_days: int) -> dict[str, Any]:
    trend_rows = [(c.id, f.trend[c.id]) for c in f.categories if c.id in f.trend]
    return {"f": f, "h": f.health, "L": f.lead, "subject": subject, "chart_src": chart_src,
            "chart_categories": len(chart_series(f)),
            "xlsx_rows": xlsx_rows, "accept_days": accept_days, "handle_days": handle_days,
            "signed": _signed, "days": _days, "trend_rows": trend_rows}


def chart_series(f: Figures) -> dict[str, list[int]]:
    """The chart's lines: the CHART_CATEGORIES categories with the most letters over the 12
    weeks (a phone shows five lines legibly; the text body lists every category's counts)."""
    ranked = sorted(((sum(v), c.id) for c in f.categories if (v := f.trend.get(c.id))
                     and sum(v)), key=lambda nc: (-nc[0], nc[1]))
    return {cid: f.trend[cid] for _n, cid in ranked[:CHART_CATEGORIES]}


def render(templates: jinja2.Environment, f: Figures, *, chart_src: str, xlsx_rows: int,
           accept_days: int, handle_days: int) -> tuple[str, str, str]:
    """(subject, text, html); ``chart_src`` is the image URL (``cid:…`` or ``data:…``)."""
    subject = subject_of(f)
    values = _values(f, subject, chart_src, xlsx_rows, accept_days, handle_days)
    text = templates.get_template("email/digest.txt").render(values)
    html = templates.get_template("email/digest.html").render(values)
    return subject, text, html


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chart_cid(domain: str) -> str:
    return f"{CHART_CID_LOCAL}@{domain}"


def messages(
    *, week: str, subject: str, text: str, html: str, chart_png: bytes, xlsx: bytes,
    recipients: list[str], from_addr: str, from_name: str, secret: bytes, id_domain: str,
) -> list[Message]:
    """One complete mail per recipient (each with its own Message-ID), for the outbox.

    ``html`` must reference the chart as ``cid:`` + :func:`chart_cid` of the sender's domain.
    The Message-IDs are signed with ``secret`` on ``id_domain`` like every mail we send, so that
    a digest coming back into our mailbox is known as our own (handlers.loop_guard).
    """
    domain = from_addr.rpartition("@")[2] or "localhost"
    out = []
    for i, entry in enumerate(recipients):
        name, addr = parseaddr(entry)
        message_id = tracking.signed_message_id(secret, "digest", f"{week}r{i}", id_domain)
        data = compose.build(compose.Outgoing(
            from_addr=from_addr, from_name=from_name, to=[(name, addr)], subject=subject,
            text=text, html=html, message_id=message_id, auto_submitted="auto-generated",
            inline=[compose.Inline(chart_cid(domain), chart_png)],
            attachments=[compose.Attached(f"feedback-{week}.xlsx", xlsx, *XLSX_TYPE)],
        ))
        out.append(Message(recipient=addr, sender=from_addr, message_id=message_id, data=data))
    return out
