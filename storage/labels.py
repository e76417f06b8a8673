"""Staff-confirmed labels: what the classifier learns from.

When staff reclassify a submission, the label they chose is kept as a row of its own (who, when,
what) and applied to the submission. ``feedback-bot train`` reads the latest label of each
submission through :func:`confirmed_examples`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import make_engine, utcnow
from storage.models import Label, Submission


async def confirm(session: AsyncSession, sub: Submission, *, category: str,
                  measure: str | None, kind: str | None, user_id: int | None,
                  taxonomy_version: str | None = None) -> Label:
    """Store a staff-confirmed label and apply it to the submission. ``taxonomy_version`` is
    the report staff chose the category from: the letter's category now means that report's."""
    label = Label(submission_id=sub.id, category=category, measure=measure, kind=kind,
                  user_id=user_id, at=utcnow())
    session.add(label)
    sub.category, sub.measure, sub.kind = category, measure, kind
    if taxonomy_version:
        sub.taxonomy_version = taxonomy_version
    sub.needs_review = False
    sub.updated_at = utcnow()
    await session.flush()
    return label


async def latest_examples(session: AsyncSession) -> list[dict[str, Any]]:
    """{subject, body, category, measure, kind, taxonomy_version} of the latest label of each
    submission (the version says which report's categories the label means)."""
    latest = (select(func.max(Label.id).label("id")).group_by(Label.submission_id)
              .subquery())
    stmt = (select(Label, Submission).join(latest, Label.id == latest.c.id)
            .join(Submission, Submission.id == Label.submission_id).order_by(Label.id))
    out = []
    for label, sub in (await session.execute(stmt)).all():
        out.append({"subject": sub.subject, "body": sub.new_text or sub.text,
                    "category": label.category, "measure": label.measure, "kind": label.kind,
                    "taxonomy_version": sub.taxonomy_version})
    return out


async def _examples_from(url: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        async with AsyncSession(engine) as session:
            return await latest_examples(session)
    finally:
        await engine.dispose()


def confirmed_examples(url: str) -> list[dict[str, Any]]:
    """Blocking helper for the CLI (``feedback-bot train``); safe inside a running loop too."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_examples_from(url))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _examples_from(url)).result()
