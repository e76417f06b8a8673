"""A citizen in headless Chromium at phone width: submit with a photo, get the mail, look up the
status, add to it, rate it once staff resolved it; keyboard use; the rate-limit page.

Screenshots at 360 px go to test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

from bot.app import Service
from testing.smtp import SmtpSink
from tests.bot.citizen.conftest import StartService
from tests.bot.citizen.steps import LETTER, mail_query_code, png, resolve
from tests.bot.helpers import wait_mail

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
PHONE = {"width": 360, "height": 780}


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}-360.png"), full_page=True)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page scrolls sideways at 360 px ({width})"


async def look_up(page: Page, base_url: str, tn: str, code: str) -> None:
    await page.goto(f"{base_url}/status")
    await page.get_by_label("受理编号").fill(tn)
    await page.get_by_label("查询码").fill(code)
    await page.get_by_role("button", name="查询", exact=True).click()


async def test_citizen_journey(service: Service, page: Page, smtp_sink: SmtpSink):
    await page.set_viewport_size(PHONE)
    await page.goto(f"{service.base_url}/feedback")
    await page.get_by_label("反映内容").fill(LETTER)
    await page.get_by_label("电子邮箱").fill("chen@example.com")
    await page.get_by_label("附件").set_input_files(
        [{"name": "窗口.png", "mimeType": "image/png", "buffer": png(8, 8)}])
    await shot(page, "form-filled")
    await page.get_by_role("button", name="提交").click()
    tn = (await page.locator("#tracking-number").text_content() or "").strip()
    code = (await page.locator("#query-code").text_content() or "").strip()
    await shot(page, "done")

    [mail] = await wait_mail(smtp_sink, 1)
    assert tn in str(mail.message["Subject"]) and mail_query_code(mail.message) == code

    await page.get_by_role("link", name="办理进度查询").click()
    await look_up(page, service.base_url, tn, code)
    assert await page.locator("#stage").text_content() == "待受理"
    assert "?" not in page.url and code not in page.url
    await shot(page, "status")

    await page.get_by_label("补充内容").fill("补充：当天排队的号码是 A037，窗口是 3 号。")
    await page.get_by_role("button", name="提交补充内容").click()
    assert "已收到您的补充内容" in (await page.locator("#flash").text_content() or "")

    await resolve(service, tn, reply="您好：经核查，3 号窗口已调整午间值班，并实行一次性告知。")
    await page.goto(f"{service.base_url}/status")
    assert await page.locator("#stage").text_content() == "已办结"
    assert "一次性告知" in (await page.locator(".reply-text").first.text_content() or "")
    await page.get_by_label("基本满意").check()
    await page.get_by_label("意见或建议").fill("希望以后能更快一些。")
    await page.get_by_role("button", name="提交评价").click()
    assert "基本满意" in (await page.locator("#current-rating").text_content() or "")
    await shot(page, "status-rated")
    await wait_mail(smtp_sink, 2)  # the staff reply went out by mail too


async def test_lookup_by_keyboard_alone_with_visible_focus(service: Service, page: Page):
    await page.set_viewport_size(PHONE)
    await page.goto(f"{service.base_url}/feedback")
    await page.get_by_label("反映内容").fill(LETTER)
    await page.get_by_role("button", name="提交").click()
    tn = (await page.locator("#tracking-number").text_content() or "").strip()
    code = (await page.locator("#query-code").text_content() or "").strip()

    await page.goto(f"{service.base_url}/status")
    seen = []
    for _ in range(12):  # skip link, header/footer links, then the fields
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.id")
        seen.append(focused)
        if focused == "tracking_no":
            break
    assert seen[-1] == "tracking_no", seen
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "keyboard focus is not visible"
    await page.keyboard.type(tn)
    await page.keyboard.press("Tab")
    await page.keyboard.type(code)
    await page.keyboard.press("Enter")
    await page.locator("#stage").wait_for()
    assert await page.locator("#tracking-number").text_content() == tn


async def test_rate_limit_page(start_service: StartService, page: Page):
    service = await start_service(web={"lookups_per_hour": 2})
    await page.set_viewport_size(PHONE)
    for _ in range(3):
        await look_up(page, service.base_url, "FK-2345-6789", "123456")
    assert await page.locator("h1").text_content() == "操作太频繁"
    assert "30 分钟后再试" in (await page.locator(".lead").text_content() or "")
    await shot(page, "rate-limited")
