"""The queue page (/console): newest first, filters with counts, keyset pages of 50.

Rows are summarised once here for the page, the export and the API alike, so that the rule
"a reviewer sees that a report exists, not its content" is applied in one place.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.web.console import auth, filters, present, report_views
from bot.web.console.security import confidential, restricted, visible_links
from bot.web.keys import RUNTIME
from handlers.text import excerpt
from storage import repeats, review_list, urgent, workflow
from storage.db import utcnow
from storage.models import Submission, User

PAGE_SIZE = 50
# Counting every category reads every matching row (about 80 ms at a million rows on SQLite
# through the covering index, more for a broad search; see bench/console_list.py); paging through
# a list must not pay that on every click, so counts are reused for a short while per filter.
COUNTS_TTL = 30.0
CountsCache = dict[tuple, tuple[float, tuple[dict[str, int], int | None]]]
COUNTS_CACHE: web.AppKey[CountsCache] = web.AppKey("console_counts", dict)
HIDDEN = "（举报内容仅主管、管理员可见）"


def summarize(sub: Submission, user: User, rt: Runtime, names: dict[int, str],
              now: datetime) -> dict[str, Any]:
    """One submission as a list row; content blanked when the viewer may not read it."""
    s = rt.settings
    due = present.clocks(sub, s.intake.accept_days, s.intake.handle_days, s.digest.timezone, now)
    hidden = restricted(sub, user)
    return {
        "id": sub.id,
        "tracking_no": sub.tracking_no,
        "received_at": sub.received_at,
        "received": present.local(sub.received_at, s.digest.timezone),
        "channel": sub.channel,
        "channel_name": present.CHANNEL.get(sub.channel, sub.channel),
        "category": sub.category,
        "category_name": present.category_name(sub.category, sub.taxonomy_version),
        "measure": sub.measure,
        "kind": sub.kind,
        "kind_name": present.KIND.get(sub.kind or "", sub.kind or ""),
        "status": sub.status,
        "status_name": workflow.status_name(sub.status),
        "restricted": hidden,
        "confidential": confidential(sub),
        "subject": HIDDEN if hidden else (sub.subject or "（无标题）"),
        "excerpt": "" if hidden else excerpt(sub.new_text or sub.text, 90),
        "needs_review": sub.needs_review,
        "confidence": sub.confidence,
        "auto": present.AUTO.get(sub.auto or "", sub.auto),
        "assignee": names.get(sub.assignee_id or 0, ""),
        "accept_by": present.day(due.accept_due),
        "handle_by": present.day(due.handle_due),
        "due": present.day(due.due(sub.status)),
        "overdue": due.overdue,
        # Due within [casework] due_soon_days: marked in the list, as in the morning reminder.
        "due_soon": not due.overdue and workflow.due_soon(
            due, sub.status, workflow.day_of(now, ZoneInfo(s.digest.timezone)),
            s.casework.due_soon_days),
        "accept_overdue": due.accept_overdue,
        "handle_overdue": due.handle_overdue,
        "review_overdue": due.review_overdue,
        # The API's names (issue #18): the deadlines as YYYY-MM-DD, None when not running.
        "accept_due": present.day(due.accept_due) or None,
        "handle_due": present.day(due.handle_due) or None,
        "forward_due": present.day(due.forward_due) or None,
        "review_request_by": present.day(due.review_request_by or due.recheck_request_by) or None,
        "review_due": present.day(due.review_due if sub.status == workflow.REVIEW
                                  else due.recheck_due) or None,
        "extended_days": sub.extended_days,
        # Urgent (issue #19): the mark and who took it are where the case stands, shown to every
        # role; why (cues read in its text) is content, on the letter page for those who read it.
        "urgent": bool(sub.urgent),
        "urgent_taken_by": sub.urgent_taken_by,
    }


async def staff_names(rt: Runtime) -> tuple[dict[int, str], list[User]]:
    async with rt.sessions() as db:
        staff = await review_list.staff(db)
    return {u.id: u.name for u in staff}, staff


async def _counts(cache: CountsCache, db: AsyncSession, f: review_list.QueueFilter,
                  kept: dict[str, str]) -> tuple[dict[str, int], int | None]:
    key = (tuple(sorted(kept.items())), f.search_restricted, f.assignee_id)
    hit = cache.get(key)
    if hit and time.monotonic() - hit[0] < COUNTS_TTL:
        return hit[1]
    counts = await review_list.list_counts(db, f)
    if len(cache) > 500:
        cache.clear()
    cache[key] = (time.monotonic(), counts)
    return counts


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    f = filters.parse(request.query, rt, user)
    after = filters.decode_cursor(request.query.get("after"))
    names, staff = await staff_names(rt)
    async with rt.sessions() as db:
        subs, cursor = await review_list.page(db, f, after=after, limit=PAGE_SIZE)
        counts, sampled = await _counts(request.app[COUNTS_CACHE], db, f,
                                        filters.kept(request.query))
        # The open urgent letters stay pinned above the list's first page (unfiltered): the
        # list below keeps its newest-first keyset pages, where they appear again in place.
        pinned = await urgent.pinned(db) if after is None and not filters.kept(request.query) \
            else []
        links = await repeats.links_many(db, [s.id for s in (*subs, *pinned)])
    seen = {s.id for s in subs}
    await report_views.many(request, [*subs, *(p for p in pinned if p.id not in seen)],
                            "search" if f.q else "list", f.q)
    now = utcnow()
    kept = filters.kept(request.query)
    next_cursor = filters.encode_cursor(cursor)
    context = {
        "user": user,
        "rows": [{**summarize(s, user, rt, names, now),
                  "links": visible_links(s, user, links.get(s.id, []))} for s in subs],
        "pinned": [{**summarize(s, user, rt, names, now),
                    "links": visible_links(s, user, links.get(s.id, []))} for s in pinned],
        "link_kinds": present.LINK_KINDS,
        "f": f,
        "query": request.query,
        "kept": kept,
        "counts": counts,
        "total": sum(counts.values()),
        "sampled": sampled,
        "categories": present.categories(),
        "category_name": present.category_name,
        "statuses": workflow.STATUS,
        "channels": present.CHANNEL,
        "kinds": present.KIND,
        "staff": staff,
        "first_page": after is None,
        "next_url": f"/console?{urlencode({**kept, 'after': next_cursor})}" if next_cursor else None,
        "export_qs": urlencode(kept),
        "link": lambda **changes: "/console?" + urlencode(
            {k: v for k, v in {**kept, **changes}.items() if v}),
    }
    return await auth.render(request, "console/queue.html", context)
