"""The public replies page (/replies) in headless Chromium at 360 px: axe finds no serious or
critical violation, the page does not scroll sideways, and it lists a published reply under its
category and measure."""

from __future__ import annotations

from playwright.async_api import Page
from sqlalchemy import select

from storage import public_replies
from storage.models import Submission
from tests.bot.citizen.conftest import StartService
from tests.bot.citizen.steps import client, resolve, submit_letter
from tests.bot.citizen.test_citizen_accessibility import axe_problems
from tests.bot.helpers import filed


async def test_replies_page_reads_on_a_phone(start_service: StartService, a11y_page: Page):
    service = await start_service()
    page, base = a11y_page, service.base_url
    await page.goto(f"{base}/replies")
    assert await page.locator("h1").text_content() == "公开答复"
    empty = await axe_problems(page)
    async with client() as http:
        tn, _code = await submit_letter(http, base, public="yes")
    await filed(service)
    await resolve(service, tn)
    async with service.runtime.sessions.begin() as db:
        sub = await db.scalar(select(Submission).where(Submission.tracking_no == tn))
        assert sub is not None
        sub.category, sub.measure = "3", "3.2"
        await public_replies.publish(db, sub, question="社区派出所办理居住证要跑三次。" * 8,
                                     answer="已实行一次性告知制度。" * 10, actor="supervisor1")
    await page.goto(f"{base}/replies")
    listed = await axe_problems(page)
    assert {"empty": empty, "listed": listed} == {"empty": [], "listed": []}
    assert await page.locator("article.reply").count() == 1
    assert "整改措施 3.2" in (await page.locator("#category-3 h3").text_content() or "")
    # Nothing wider than the phone's screen.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
