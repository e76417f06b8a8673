"""The weekly digest for the leadership: figures, masked excerpts, trend chart, XLSX, mail.

``build`` makes everything one week's digest needs from the database, without sending anything:
the week's rows (``storage.digests.week_rows``, for the XLSX and the quotes) →
``figures.collect`` (SQL aggregates in storage.digests) → ``chart.trend_png`` and
``xlsx.week_workbook`` (CPU work, in a thread) → ``render.render`` (templates). The scheduler in
``bot/workers/digest.py`` and ``feedback-bot digest`` then turn a :class:`Built` into outbox rows
with ``render.messages`` and ``storage.digests.record_run``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.digest import render
from handlers.digest.figures import Figures, Options, collect
from handlers.digest.weeks import Week, week_before, week_of
from storage import digests

__all__ = ["Built", "Figures", "Options", "Week", "build", "week_before", "week_of"]


@dataclass
class Built:
    week: Week
    figures: Figures
    subject: str
    text: str
    html: str  # references the chart by cid:
    console_html: str  # the same page with the chart as a data: URI
    chart_png: bytes
    xlsx: bytes
    xlsx_rows: int

    def summary(self) -> dict:
        return self.figures.as_dict() | {"xlsx_rows": self.xlsx_rows}

    def messages(self, recipients: list[str], from_addr: str, from_name: str, *,
                 secret: bytes, id_domain: str) -> list[digests.Message]:
        return render.messages(
            week=str(self.week), subject=self.subject, text=self.text, html=self.html,
            chart_png=self.chart_png, xlsx=self.xlsx, recipients=recipients,
            from_addr=from_addr, from_name=from_name, secret=secret, id_domain=id_domain)


async def build(session: AsyncSession, week: Week, opts: Options,
                templates: jinja2.Environment, from_addr: str) -> Built:
    """Everything of ``week``'s digest; ``from_addr`` gives the domain of the chart's Content-ID."""
    tz = ZoneInfo(opts.timezone)
    rows = [r async for r in digests.week_rows(session, week.start(tz), week.end(tz))]
    # Imported here, once a week: matplotlib and openpyxl are ~30 MB of a service's memory that
    # only the digest uses.
    from handlers.digest import chart, xlsx

    # The XLSX's masking needs no figures: it runs while the figures' queries run (in the
    # database's thread or server, which let go of the interpreter meanwhile).
    f, texts = await asyncio.gather(collect(session, week, opts, week_rows=rows),
                                    asyncio.to_thread(xlsx.masked_texts, rows))
    labels = {c.id: c.short for c in f.categories}
    series = render.chart_series(f)
    png = await asyncio.to_thread(chart.trend_png, f.trend_weeks, series, labels)
    data, n = await asyncio.to_thread(xlsx.week_workbook, rows, f, texts)
    domain = from_addr.rpartition("@")[2] or "localhost"
    common = {"xlsx_rows": n, "accept_days": opts.accept_days, "handle_days": opts.handle_days}
    subject, text, html = render.render(
        templates, f, chart_src=f"cid:{render.chart_cid(domain)}", **common)
    _, _, console = render.render(templates, f, chart_src=render.data_uri(png), **common)
    return Built(week, f, subject, text, html, console, png, data, n)
