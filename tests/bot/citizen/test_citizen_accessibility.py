"""axe-core (vendored: tests/vendor/axe.min.js) in headless Chromium at 360 px: no serious or
critical violations on the form, success, status, privacy and error pages."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

from tests.bot.citizen.conftest import StartService
from tests.bot.citizen.steps import LETTER, resolve

AXE = Path(__file__).resolve().parents[2] / "vendor" / "axe.min.js"
BLOCKING = ("serious", "critical")


async def axe_problems(page: Page) -> list[str]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in BLOCKING]


async def test_citizen_pages_pass_axe(start_service: StartService, a11y_page: Page):
    service = await start_service(web={"lookups_per_hour": 4})
    page, base = a11y_page, service.base_url
    problems: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        problems[name] = await axe_problems(page)

    await page.goto(f"{base}/feedback")
    await check("form")
    await page.get_by_label("反映内容").fill("短")
    await page.get_by_label("电子邮箱").fill("x@")
    await page.get_by_role("button", name="提交").click()
    await check("form with errors")
    await page.get_by_label("反映内容").fill(LETTER)
    await page.get_by_label("电子邮箱").fill("")
    await page.get_by_role("button", name="提交").click()
    tn = (await page.locator("#tracking-number").text_content() or "").strip()
    code = (await page.locator("#query-code").text_content() or "").strip()
    await check("success")

    await page.goto(f"{base}/status")
    await check("status lookup")
    await page.get_by_label("受理编号").fill(tn)
    await page.get_by_label("查询码").fill("000000")
    await page.get_by_role("button", name="查询", exact=True).click()
    await check("status lookup, wrong pair")
    await page.get_by_label("查询码").fill(code)
    await page.get_by_role("button", name="查询", exact=True).click()
    await check("status")
    await resolve(service, tn)
    await page.get_by_label("补充内容").fill("短")
    await page.get_by_role("button", name="提交补充内容").click()
    await check("status resolved, with a field error")

    await page.goto(f"{base}/privacy")
    await check("privacy")
    await page.goto(f"{base}/no-such-page")
    await check("404")
    await page.goto(f"{base}/status")
    await page.get_by_role("button", name="退出查询").click()
    for _ in range(3):  # two lookups were made above; the limit is four
        await page.goto(f"{base}/status")
        await page.get_by_role("button", name="查询", exact=True).click()
    assert await page.locator("h1").text_content() == "操作太频繁"
    await check("429")

    assert {k: v for k, v in problems.items() if v} == {}


async def test_axe_harness_reports_a_missing_label(a11y_page: Page):
    """The check above can fail: an unlabelled field on a blank page is reported."""
    await a11y_page.set_content('<html lang="zh-CN"><body><main><input type="text"></main></body></html>')
    assert any(p.startswith("label ") for p in await axe_problems(a11y_page))
