"""The commission's identity comes from the configuration (issue #15 item 12): a deployment
names its own report and channels without editing a template.

Driven in headless Chromium at 360 px with an identity unlike the defaults, so that a template
that still carries a fixed name or number fails."""

from __future__ import annotations

from email.message import EmailMessage

from playwright.async_api import Page

from testing.smtp import SmtpSink
from tests.bot.citizen.conftest import StartService
from tests.bot.citizen.test_citizen_accessibility import axe_problems
from tests.bot.helpers import wait_mail

IDENTITY = {
    "commission": {"name": "如皋市委政法委", "phone": "0513-87654321",
                   "address": "如皋市海阳南路8号", "mailbox": "rgzfw_jiandu@163.com"},
    "report": {"title": "如皋市委政法委关于巡察整改情况的通报",
               "url": "https://www.example.gov.cn/zfw/2025/xczg.html"},
}


def _text(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body((subtype,))
    assert part is not None
    return part.get_content()


async def test_form_names_the_report_and_every_channel_at_360px(
        start_service: StartService, a11y_page: Page, smtp_sink: SmtpSink) -> None:
    service = await start_service(**IDENTITY)
    page = a11y_page
    await page.goto(f"{service.base_url}/feedback")

    assert await page.title() == "写下您的意见 · 如皋市委政法委"
    report = page.locator("#report a")
    assert await report.text_content() == "《如皋市委政法委关于巡察整改情况的通报》"
    assert await report.get_attribute("href") == IDENTITY["report"]["url"]
    channels = page.locator("section.channels")
    assert "网上留言" in (await channels.text_content() or "")
    phone = page.locator("#channel-phone a")
    assert (await phone.text_content(), await phone.get_attribute("href")) == (
        "0513-87654321", "tel:051387654321")
    assert "如皋市海阳南路8号" in (await page.locator("#channel-post").text_content() or "")
    mailbox = page.locator("#channel-mail a")
    assert await mailbox.get_attribute("href") == "mailto:rgzfw_jiandu@163.com"
    page_text = await page.locator("body").inner_text()
    for fixed in ("南通", "85098289", "世纪大道", "ntzfwjgdw"):  # the defaults
        assert fixed not in page_text
    # Readable on a small phone: nothing wider than the screen, every channel on screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    assert await phone.is_visible() and await mailbox.is_visible()
    assert await axe_problems(page) == []
    await page.screenshot(path=str(service.runtime.settings.var_dir) + "/form-identity.png",
                          full_page=True)

    await page.get_by_label("反映内容").fill("法律援助中心的窗口下午经常没人，打电话也没人接，希望改进。")
    await page.get_by_label("电子邮箱").fill("citizen@qq.com")
    await page.get_by_role("button", name="提交").click()
    await page.locator("#tracking-number").wait_for()
    assert "0513-87654321" in await page.locator("footer").inner_text()

    [mail] = await wait_mail(smtp_sink, 1, timeout=15)
    message = mail.message
    assert message["From"].addresses[0].display_name == "如皋市委政法委群众来信"
    for subtype in ("plain", "html"):
        body = _text(message, subtype)
        assert "如皋市委政法委" in body and "0513-87654321" in body
        assert "南通" not in body


async def test_pages_carry_the_default_identity_of_the_report(
        start_service: StartService, a11y_page: Page) -> None:
    """Without configuration the pages name the 2021 report's commission and its channels."""
    service = await start_service()
    await a11y_page.goto(f"{service.base_url}/feedback")
    text = await a11y_page.locator("main").inner_text()
    for expected in ("南通市委政法委", "85098289", "南通市世纪大道6号", "ntzfwjgdw@163.com"):
        assert expected in text
    for path in ("/status", "/privacy", "/no-such-page"):
        await a11y_page.goto(f"{service.base_url}{path}")
        assert "85098289" in await a11y_page.locator("body").inner_text(), path
