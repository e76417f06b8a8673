"""A staff member in headless Chromium: sign in, filter, open a letter, reclassify, accept it,
reply (the reply reaches the SMTP sink), sign out; and a letter full of script stays inert."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

from bot.app import Service
from handlers import tracking
from storage import labels
from testing.smtp import SmtpSink
from tests.bot.console.support import PASSWORD, Staff, file_letter
from tests.bot.helpers import wait_mail

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
XSS = ("<script>document.title='pwned';window.__xss=1</script>"
       "<img src=x onerror=\"window.__xss=2\">请处理<b>路灯</b>问题")


async def _sign_in(page: Page, base: str, name: str) -> None:
    await page.goto(f"{base}/console")
    assert "/console/login" in page.url
    await page.get_by_label("用户名").fill(name)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.locator("#submissions, #empty").first.wait_for()


async def test_staff_work_a_letter_end_to_end(service: Service, page: Page, smtp_sink: SmtpSink,
                                              supervisor: Staff):
    sid = await file_letter(service, "法院执行局的电话一直没人接，案子判了一年多钱还没执行到位。",
                            subject="执行难", email="qian@example.com", name="钱女士")
    await file_letter(service, "公园里的健身器材坏了很久了，希望尽快修好。", subject="健身器材")
    [ack] = await wait_mail(smtp_sink, 1, timeout=10)
    base = service.base_url
    await page.set_viewport_size({"width": 1366, "height": 900})
    await _sign_in(page, base, supervisor.name)
    rows = page.locator("#submissions tbody tr")
    assert await rows.count() == 2, await page.locator("#submissions").inner_text()
    await page.get_by_label("搜索（标题、内容或编号）").fill("执行局")
    await page.get_by_role("button", name="筛选").click()
    await page.wait_for_url("**/console?*q=*")
    assert await rows.count() == 1
    tn = (await rows.first.get_attribute("data-tracking")) or ""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)
    await page.get_by_role("link", name=tn).click()
    await page.locator("#tracking-no").wait_for()
    assert await page.locator("#text").text_content() == (
        "法院执行局的电话一直没人接，案子判了一年多钱还没执行到位。")

    await page.select_option("#new-category", "4")
    await page.select_option("#new-kind", "complaint")
    await page.locator("#form-classify button").click()
    assert "分类已更新" in (await page.locator("#flash").text_content() or "")
    assert "（4）" in (await page.locator("#category").text_content() or "")
    assert await page.locator("#kind").text_content() == "投诉"

    await page.select_option("#action", "accept")
    await page.locator("#form-status button").click()
    assert "已受理" in (await page.locator("#flash").text_content() or "")
    assert await page.locator("#status").text_content() == "已受理"

    await page.get_by_label("答复内容", exact=False).fill("您反映的问题已转执行局核实，将于十日内答复。")
    await page.get_by_role("button", name="发送答复").click()
    assert "发送队列" in (await page.locator("#flash").text_content() or "")
    mails = await wait_mail(smtp_sink, 3, timeout=10)  # ack, the 受理 notice, the reply
    assert "受理告知书" in str(mails[1].message["Subject"])
    reply = mails[2].message
    assert reply["In-Reply-To"] == ack.message["Message-ID"]  # threaded under the ack
    assert tn in str(reply["Subject"]) and reply["To"].addresses[0].addr_spec == "qian@example.com"
    assert "十日内答复" in reply.get_body(preferencelist=("plain",)).get_content()
    assert reply["Auto-Submitted"] == "no"  # written by a person
    assert tracking.verify_message_id(service.runtime.secret, reply["Message-ID"]) == tn
    assert ack.message["Message-ID"] != reply["Message-ID"]
    history = await page.locator("#history").text_content() or ""
    assert all(w in history for w in ("改分类", "改状态", "答复来信人", supervisor.name))
    await page.screenshot(path=str(ARTIFACTS / "console-submission.png"), full_page=True)
    examples = labels.confirmed_examples(service.runtime.settings.database.url)
    assert [(e["category"], e["kind"]) for e in examples] == [("4", "complaint")]
    assert sid

    await page.get_by_role("button", name="退出登录").click()
    await page.wait_for_url("**/console/login")
    await page.goto(f"{base}/console/s/{sid}")
    assert "/console/login" in page.url


async def test_script_in_a_letter_is_shown_inert(service: Service, page: Page, supervisor: Staff):
    sid = await file_letter(service, XSS, subject="<script>window.__xss=3</script>标题")
    await _sign_in(page, service.base_url, supervisor.name)
    title = await page.title()
    assert await page.evaluate("typeof window.__xss") == "undefined"
    await page.goto(f"{service.base_url}/console?view=all")
    await page.goto(f"{service.base_url}/console/s/{sid}")
    await page.locator("#text").wait_for()
    assert await page.evaluate("typeof window.__xss") == "undefined"
    assert await page.title() != "pwned" and "工作台" in await page.title() and title
    assert "<script>document.title='pwned'" in (await page.locator("#text").text_content() or "")
    assert await page.locator("#main img[src=x]").count() == 0
