"""Public replies (公开答复), from outside against the running service (SQLite and PostgreSQL):
the citizen ticks 同意公开 on the form, staff answer the case, a supervisor checks the masked
draft and publishes it, and /replies shows it under its category and measure — never a 举报,
never a letter without consent, never a phone or ID number, never through a reviewer."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from bot.app import Service
from storage.models import Event, Submission
from tests.bot.citizen.steps import submit_multipart
from tests.bot.console.support import Staff, login, page_csrf, post_form
from tests.bot.helpers import filed, tracking_no

PHONE, ID_NO, NAME = "13812345678", "110101199003071234", "张建国"
LETTER = (f"我叫{NAME}，手机{PHONE}，身份证{ID_NO}。幸福路派出所办理居住证要跑三次，"
          "窗口说材料不全但又不一次性告知，希望整改措施落到实处。")
ANSWER = f"经核查，派出所已实行一次性告知制度。如有问题可拨打{PHONE}以外的服务热线12345。"


async def letter(service: Service, http: aiohttp.ClientSession, **fields: str) -> Submission:
    status, html = await submit_multipart(http, service.base_url, body=LETTER, name=NAME,
                                          **fields)
    assert status == 200, html
    await filed(service)
    async with service.runtime.sessions() as db:
        sub = await db.scalar(select(Submission).where(
            Submission.tracking_no == tracking_no(html)))
    assert sub is not None
    return sub


async def answer(http: aiohttp.ClientSession, base: str, sid: int) -> None:
    for data in ({"action": "accept"}, {"action": "resolve", "reply": ANSWER}):
        token = await page_csrf(http, f"{base}/console/s/{sid}")
        status, _body, _loc = await post_form(http, f"{base}/console/s/{sid}/status",
                                              {"csrf": token, **data})
        assert status == 302


async def flash_after(http: aiohttp.ClientSession, base: str, sid: int, action: str,
                      data: dict[str, str]) -> str:
    token = await page_csrf(http, f"{base}/console/s/{sid}")
    status, _body, _loc = await post_form(http, f"{base}/console/s/{sid}/{action}",
                                          {"csrf": token, **data})
    assert status == 302
    async with http.get(f"{base}/console/s/{sid}") as resp:
        return await resp.text()


async def public_page(base: str) -> str:
    async with aiohttp.ClientSession() as anyone, anyone.get(f"{base}/replies") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_a_consenting_citizens_answered_letter_is_checked_then_published(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    async with aiohttp.ClientSession() as citizen:
        sub = await letter(service, citizen, public="yes")
    assert (sub.flags or {}).get("public") is True  # the form's tick, kept on the case
    await login(client, base, supervisor.name)
    async with client.get(f"{base}/console/s/{sub.id}") as resp:
        page = await resp.text()
    assert "办结以后才能公开" in page  # consent alone is not enough
    await answer(client, base, sub.id)
    async with client.get(f"{base}/console/s/{sub.id}") as resp:
        page = await resp.text()
    # The draft to check: masked by the digest's masker.
    assert 'name="question"' in page and "138****5678" in page
    draft_q = page.split('id="public-question" name="question" rows="6">')[1].split("</textarea>")[0]
    draft_a = page.split('id="public-answer" name="answer" rows="6">')[1].split("</textarea>")[0]
    assert PHONE not in draft_q + draft_a and ID_NO not in draft_q and NAME not in draft_q
    # An edit that puts the phone number back is refused, and nothing goes up.
    refused = await flash_after(client, base, sub.id, "publish",
                                {"question": draft_q + f"回电{PHONE}", "answer": draft_a})
    assert "仍有电话、身份证号" in refused
    assert "幸福路派出所" not in await public_page(base)
    # The checked text, edited by the person, goes up as approved.
    import html as htmllib
    question = htmllib.unescape(draft_q).replace("希望整改措施落到实处", "希望一次性告知")
    done = await flash_after(client, base, sub.id, "publish",
                             {"question": question, "answer": htmllib.unescape(draft_a)})
    assert "已审核并公开" in done
    shown = await public_page(base)
    assert "希望一次性告知" in shown and "一次性告知制度" in shown
    assert PHONE not in shown and ID_NO not in shown and NAME not in shown
    async with service.runtime.sessions() as db:
        sub = await db.get(Submission, sub.id)
        assert sub is not None
        actors = list(await db.scalars(select(Event.actor).where(
            Event.submission_id == sub.id, Event.action == "public-reply-published")))
    assert actors == [supervisor.name]  # audited
    assert f'id="category-{sub.category}"' in shown
    # Taken down: off the page, audited too.
    gone = await flash_after(client, base, sub.id, "unpublish", {})
    assert "已从公开答复页面撤下" in gone
    assert "一次性告知制度" not in await public_page(base)


async def test_a_report_or_a_letter_without_consent_is_never_published(
        service: Service, supervisor: Staff, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    async with aiohttp.ClientSession() as citizen:
        report = await letter(service, citizen, public="yes", report="real")
        plain = await letter(service, citizen)
    assert report.restricted
    await login(client, base, supervisor.name)
    for sub in (report, plain):
        await answer(client, base, sub.id)
    said = await flash_after(client, base, report.id, "publish",
                             {"question": "来信", "answer": "答复"})
    assert "举报件一律不公开" in said
    said = await flash_after(client, base, plain.id, "publish",
                             {"question": "来信", "answer": "答复"})
    assert "没有勾选“同意公开”" in said
    shown = await public_page(base)
    assert "目前还没有公开的答复" in shown and "幸福路派出所" not in shown
    # A reviewer may not publish at all, nor see the panel.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as rev:
        await login(rev, base, reviewer.name)
        async with rev.get(f"{base}/console/s/{plain.id}") as resp:
            assert 'id="public-reply"' not in await resp.text()
        token = await page_csrf(rev, f"{base}/console/s/{plain.id}")
        status, _b, _l = await post_form(rev, f"{base}/console/s/{plain.id}/publish",
                                         {"csrf": token, "question": "来信", "answer": "答复"})
        assert status == 403
    assert "目前还没有公开的答复" in await public_page(base)
