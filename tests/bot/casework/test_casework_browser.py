"""In headless Chromium: a staff member enters a phone call in the console, accepts it and
answers it there; the caller, who has no e-mail, reads the answer on the status page with the
tracking number and query code read out to them, and asks for 复查 on it."""

from __future__ import annotations

from playwright.async_api import Page

from bot.app import Service
from handlers import tracking
from tests.bot.casework.support import Staff
from tests.bot.console.support import PASSWORD, entered

CALL = "村口的路灯坏了三个月，晚上老人孩子走路摔了好几次，打电话给村里也没人管。"
ANSWER = "经核查，供电所已于本周更换村口路灯三盏，并建立每月巡查制度。"


async def _act(page: Page, action: str, **fields: str) -> str:
    """One step in the letter page's 办理 form; the notice the console shows after it."""
    await page.select_option("#action", action)
    for key, value in fields.items():
        await page.fill(f"#form-status [name={key}]", value)
    async with page.expect_navigation():
        await page.locator("#form-status button[type=submit]").click()
    return await page.locator("#flash").inner_text()


async def test_a_phone_caller_reads_the_answer_on_the_status_page(
        service: Service, page: Page, supervisor: Staff) -> None:
    base = service.base_url
    await page.goto(f"{base}/console/login")
    await page.get_by_label("用户名").fill(supervisor.name)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.goto(f"{base}/console/new?channel=phone")
    await page.get_by_label("姓名或称呼").fill("周大妈")
    await page.get_by_label("反映内容").fill(CALL)
    await page.get_by_role("button", name="登记").click()
    # The page shows the tracking number and the query code once, to read out to the caller;
    # the intake worker files the letter moments later.
    tn = (await page.locator("#tracking-number").text_content() or "").strip()
    code = (await page.locator("#query-code").text_content() or "").strip()
    assert code == tracking.query_code_for(service.runtime.secret, tn)
    await page.goto(f"{base}/console/s/{await entered(service, await page.content())}")
    assert "受理告知书" in await _act(page, "accept")
    assert "未完成" in await _act(page, "resolve", reply="")  # an answer is needed
    assert "答复意见书" in await _act(page, "resolve", reply=ANSWER)
    assert "答复意见书" in await page.locator("#notice-list").inner_text()

    # The caller has no e-mail: the tracking number and query code were read out to them.
    citizen = await page.context.browser.new_page()  # type: ignore[union-attr]
    await citizen.goto(f"{base}/status")
    await citizen.get_by_label("受理编号").fill(tn)
    await citizen.get_by_label("查询码").fill(code)
    await citizen.get_by_role("button", name="查询", exact=True).click()
    await citizen.wait_for_selector("#notices")
    assert (await citizen.locator("#stage").text_content() or "").strip() == "已办结"
    notices = await citizen.locator("#notices").inner_text()
    assert "受理告知书" in notices and "信访事项答复意见书" in notices and ANSWER in notices
    assert notices.index("受理告知书") < notices.index("答复意见书")  # in order
    assert await citizen.locator("#no-reply").count() == 0
    assert "可申请复查至" in await citizen.locator("#deadlines").inner_text()

    await citizen.get_by_label("申请复查的理由").fill("更换了路灯，但没有说明之前为什么三个月没人管。")
    await citizen.get_by_role("button", name="提交复查申请").click()
    await citizen.wait_for_selector("#flash")
    assert (await citizen.locator("#stage").text_content() or "").strip() == "复查中"
    assert "复查申请收到告知" in await citizen.locator("#notices").inner_text()
    assert "复查答复期限" in await citizen.locator("#deadlines").inner_text()
    await citizen.close()
