"""A citizen in a real browser (headless Chromium): write, submit, see the tracking number."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

from bot.app import Service
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def test_citizen_submits_in_browser(service: Service, page: Page, smtp_sink: SmtpSink):
    await page.set_viewport_size({"width": 360, "height": 780})
    await page.goto(f"{service.base_url}/feedback")
    await page.get_by_label("反映内容").fill("法院执行局的电话一直没人接，案子判了一年多钱还没执行到位。")
    await page.get_by_label("姓名或称呼").fill("钱女士")
    await page.get_by_label("电子邮箱").fill("qian@example.com")
    await page.get_by_role("button", name="提交").click()
    number = page.locator("#tracking-number")
    await number.wait_for()
    tn = (await number.text_content() or "").strip()
    assert tn.startswith("FK-")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "form-done-360.png"), full_page=True)
    [mail] = await wait_mail(smtp_sink, 1, timeout=10)
    assert tn in str(mail.message["Subject"])


async def test_browser_shows_errors_next_to_fields(service: Service, page: Page):
    await page.goto(f"{service.base_url}/feedback")
    await page.get_by_label("反映内容").fill("短")
    await page.get_by_label("电子邮箱").fill("qian@")
    await page.get_by_role("button", name="提交").click()
    await page.locator("#error-summary").wait_for()
    assert await page.locator("#body").get_attribute("aria-invalid") == "true"
    assert "至少写 5 个字" in (await page.locator("#body-error").text_content() or "")
    assert await page.locator("#email").input_value() == "qian@"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "form-errors-360.png"), full_page=True)
