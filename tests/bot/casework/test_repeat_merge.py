"""Repeat letters (并单) against the real servers (SQLite and PostgreSQL, aiosmtpd, the intake
worker with its repeat index): a letter is linked at intake to the same writer's open cases and
to near-duplicates from other citizens; staff see the links on the letter page, in the queue
and in the API, merge one case into another (console and API share the rules and their
Chinese 400s) or unlink them; the merged case's citizen is told the carrying case's number,
and their status page shows that case's status and deadlines, never its content; a 举报's
links reach no reviewer."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from bot.app import Service
from handlers import tracking
from storage import events, notices
from storage import review_list as queue
from testing.smtp import SmtpSink
from tests.bot.casework.support import Staff, act, get, next_mail, text_of
from tests.bot.citizen.steps import client as citizen_client
from tests.bot.citizen.steps import lookup, post_on_status
from tests.bot.console.support import file_letter, login, page_csrf, post_form
from tests.bot.helpers import filed, wait_mail

# One event (a rubbish station left uncollected), told by two citizens in their own words;
# the same first writer's second, shorter letter; an unrelated letter.
EVENT = ("幸福里小区东门的垃圾站已经一个多月没人清运，垃圾堆到路上，夏天臭气熏天，苍蝇蚊子"
         "到处飞，居民出门都要捂着鼻子。希望街道环卫所尽快清运并定期清理。")
REWORDED = ("我住在幸福里小区，东门那个垃圾站快一个月了都没有清运，垃圾都堆到马路上了，天一热"
            "臭得不行，到处是苍蝇。请环卫部门赶紧来清理，以后按时清运。")
AGAIN = "再补充一句，上次反映的事情还没人管，物业说不归他们管。"
OTHER = "我在区法院打赢了劳务费官司，判决生效一年，执行局一直说对方没有财产可供执行。"


# The subject each letter is sent with, unless a test gives another.
SUBJECTS = {EVENT: "东门垃圾站", REWORDED: "垃圾没人清运", AGAIN: "还是垃圾站", OTHER: "执行难"}


async def _tn(service: Service, sid: int) -> str:
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
    assert sub is not None
    return sub.tracking_no


async def _file(service: Service, *letters: dict[str, Any]) -> tuple[list[int], list[str]]:
    """File the letters (file_letter's arguments, ``body`` among them) one after the other:
    their ids and tracking numbers, in order."""
    ids = [await file_letter(service, **({"subject": SUBJECTS.get(letter["body"], "")} | letter))
           for letter in letters]
    return ids, [await _tn(service, sid) for sid in ids]


async def _page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_repeats_are_linked_at_intake_and_shown_to_staff(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    ids, numbers = await _file(
        service, {"body": EVENT, "email": "Wang.Li@163.com"},
        {"body": AGAIN, "email": "wang.li@163.COM"}, {"body": REWORDED, "email": "zhou@qq.com"},
        {"body": OTHER, "email": "sun@qq.com"},
        {"body": "小区门口的路灯坏了半年，晚上一片漆黑。", "phone": "0513-8509 1234",
         "channel": "phone"},
        {"body": "路灯晚上不亮，上周有位老人摔倒了，请尽快修好。", "phone": "85091234",
         "channel": "phone"})
    first, again, reworded, other, called, called_again = ids
    tns = dict(zip(ids, numbers, strict=True))
    await wait_mail(smtp_sink, 4)

    # The same writer (the address however its case is written; a phone however typed),
    # and another citizen's letter about the same event, are linked; the unrelated one is not.
    assert (await get(base, supervisor, tns[again]))[1]["related"] == [tns[first]]
    got = (await get(base, supervisor, tns[reworded]))[1]
    assert got["related"] == [tns[first]]
    [link] = got["links"]
    assert link["kind"] == "content" and link["status"] == "new" and link["score"] >= 0.07
    assert (await get(base, supervisor, tns[other]))[1]["related"] == []
    assert sorted((await get(base, supervisor, tns[first]))[1]["related"]) == sorted(
        [tns[again], tns[reworded]])
    assert (await get(base, supervisor, tns[called_again]))[1]["related"] == [tns[called]]

    # The letter page lists them with the kind of link and the score; the queue names them.
    await login(client, base, supervisor.name)
    page = await _page(client, f"{base}/console/s/{first}")
    table = page[page.index('id="related"'):]
    for tn, kind in ((tns[again], "同一来信人"), (tns[reworded], "内容相似")):
        row = table[table.index(f'data-tracking="{tn}"'):]
        assert kind in row[:row.index("</tr>")]
    assert tns[other] not in page
    listing = await _page(client, f"{base}/console")
    row = listing[listing.index(f'data-tracking="{tns[first]}"'):]
    row = row[:row.index("</tr>")]
    assert "关联" in row and tns[again] in row and tns[reworded] in row

    # Unlinking is audited on both letters, and the link is gone everywhere.
    url = f"{base}/console/s/{first}"
    status, _body, _loc = await post_form(client, f"{url}/unlink", {
        "csrf": await page_csrf(client, url), "other": str(reworded)})
    assert status == 302
    assert (await get(base, supervisor, tns[reworded]))[1]["related"] == []
    async with service.runtime.sessions() as db:
        for sid in (first, reworded):
            assert "unlink" in [e.action for e in await events.for_submission(db, sid)]
    status, _body, _loc = await post_form(client, f"{url}/unlink", {
        "csrf": await page_csrf(client, url), "other": str(other)})
    assert status == 302  # not linked: a message on the page, nothing changed


async def test_merge_closes_the_case_with_a_pointer_and_its_citizen_follows_it(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    (carrier, merged, _closed), (carrier_tn, merged_tn, closed_tn) = await _file(
        service, {"body": EVENT, "email": "wang@163.com"},
        {"body": REWORDED, "email": "zhou@qq.com"}, {"body": OTHER, "email": "sun@qq.com"})
    await wait_mail(smtp_sink, 3)
    assert (await act(base, supervisor, closed_tn, {"action": "accept"}))[0] == 200
    assert (await act(base, supervisor, closed_tn, {"action": "resolve", "reply": "已办结。"}))[0] \
        == 200
    for body, words in (
        ({"action": "merge"}, "需要填写并入的受理编号"),
        ({"action": "merge", "into": "FK-0000-0000"}, "没有受理编号"),
        ({"action": "merge", "into": merged_tn}, "不能把一件来信并入它自己"),
        ({"action": "merge", "into": closed_tn}, "只能并入尚未办结的来信"),
        ({"action": "merge", "into": 5}, "没有受理编号"),
    ):
        status, answer = await act(base, supervisor, merged_tn, body)
        assert status == 400 and words in answer["error"], (body, answer)

    # Merged (the number typed in lower case): 200, closed with a pointer, and told.
    status, answer = await act(base, supervisor, merged_tn,
                               {"action": "merge", "into": carrier_tn.lower()})
    assert status == 200, answer
    assert answer["status"] == "merged" and answer["merged_into"] == carrier_tn
    mail = await next_mail(smtp_sink, 5)
    assert mail.rcpt_tos == ["zhou@qq.com"]
    assert "并案办理告知书" in str(mail.message["Subject"]) and carrier_tn in text_of(mail)
    assert EVENT[:20] not in text_of(mail)  # the other citizen's words are not quoted
    status, answer = await act(base, supervisor, carrier_tn,
                               {"action": "merge", "into": merged_tn})
    assert status == 400 and "只能并入尚未办结的来信" in answer["error"]
    async with service.runtime.sessions() as db:
        assert "merge-in" in [e.action for e in await events.for_submission(db, carrier)]
        assert [x.kind for x in await notices.for_submission(db, merged)] == ["merge"]

    # The carrying case moves on; the merged citizen's page follows it, and shows nothing of
    # the other citizen's letter, notices or replies.
    answer_text = "环卫所已清运完毕，今后每周清运两次。"
    assert (await act(base, supervisor, carrier_tn, {"action": "accept"}))[0] == 200
    code = tracking.query_code_for(service.runtime.secret, merged_tn)
    async with citizen_client() as http:
        resp = await lookup(http, base, merged_tn, code)
        assert resp.status == 303
        page = await _page(http, f"{base}/status")
        assert "已并案办理" in page and carrier_tn in page
        carrier_part = page[page.index('id="carrier"'):page.index('id="carrier-hint"')]
        assert "已受理" in carrier_part and "办结期限" in carrier_part
        assert EVENT[:12] not in page and "受理告知书" not in page
        # Their addition is kept with their own case and put before the carrying case's staff.
        status, _html = await post_on_status(http, base, "/status/followup",
                                             text="垃圾站旁边的下水道也堵了，一并反映。")
        assert status == 200
    assert (await act(base, supervisor, carrier_tn, {"action": "start"}))[0] == 200
    assert (await act(base, supervisor, carrier_tn,
                      {"action": "resolve", "reply": answer_text}))[0] == 200
    async with citizen_client() as http:
        assert (await lookup(http, base, merged_tn, code)).status == 303
        page = await _page(http, f"{base}/status")
    assert "已办结" in page and answer_text not in page and "下水道" in page
    await filed(service)
    await login(client, base, supervisor.name)
    page = await _page(client, f"{base}/console/s/{carrier}")
    assert "并入来信的补充" in page and "下水道" in page and merged_tn in page
    async with service.runtime.sessions() as db:
        actions = [e.action for e in await events.for_submission(db, carrier)]
    assert "merged-followup" in actions


async def test_merge_in_the_console_repoints_earlier_merges(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    (a, b, c), (tn_a, _, tn_c) = await _file(
        service, {"body": EVENT, "email": "a@163.com"}, {"body": REWORDED, "email": "b@qq.com"},
        {"body": EVENT + "另外，清运车经常半夜作业。", "subject": "垃圾站", "email": "c@qq.com"})
    await wait_mail(smtp_sink, 3)
    await login(client, base, supervisor.name)
    # b into c from b's page (its related table's button), then c into a from the status form.
    page = await _page(client, f"{base}/console/s/{b}")
    assert re.search(rf'name="into" value="{tn_c}"', page)
    for sid, into in ((b, tn_c), (c, tn_a)):
        url = f"{base}/console/s/{sid}"
        status, _body, _loc = await post_form(client, f"{url}/status", {
            "csrf": await page_csrf(client, url), "current": "new", "action": "merge",
            "into": into})
        assert status == 302
    async with service.runtime.sessions() as db:
        subs = {sid: await queue.get(db, sid) for sid in (a, b, c)}
    assert subs[b].merged_into_id == a and subs[c].merged_into_id == a  # one step, not a chain
    mails = await wait_mail(smtp_sink, 6)
    told_b = [m for m in mails if m.rcpt_tos == ["b@qq.com"] and "并案" in str(m.message["Subject"])]
    assert [tn_c in text_of(told_b[0]), tn_a in text_of(told_b[1])] == [True, True]
    page = await _page(client, f"{base}/console/s/{a}")
    assert 'id="merged-in"' in page and subs[b].tracking_no in page and tn_c in page


async def test_a_reports_links_reach_no_reviewer(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff, reviewer: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    writer = "brave.citizen@163.com"
    (report, ordinary, similar), (tn_report, tn_ordinary, tn_similar) = await _file(
        service, {"body": "举报街道城管队长收受摊贩好处费，" + EVENT, "subject": "举报",
                  "email": writer, "kind": "report"},
        {"body": AGAIN, "subject": "路灯", "email": writer},
        {"body": REWORDED, "email": "x@qq.com"})
    await wait_mail(smtp_sink, 3)
    assert (await get(base, supervisor, tn_ordinary))[1]["related"] == [tn_report]
    assert tn_report in (await get(base, supervisor, tn_similar))[1]["related"]

    # The reviewer: no link, no count, in the API, the letter pages and the queue.
    for tn in (tn_ordinary, tn_similar, tn_report):
        status, got = await get(base, reviewer, tn)
        assert status == 200 and got["related"] == [] and got["links"] == []
        assert (tn == tn_report) == (tn_report in str(got))
    await login(client, base, reviewer.name)
    for sid in (ordinary, similar, report):
        page = await _page(client, f"{base}/console/s/{sid}")
        assert "关联来信" not in page and 'id="related"' not in page
        assert (sid == report) == (tn_report in page)
    listing = await _page(client, f"{base}/console")
    for tn in (tn_ordinary, tn_similar):
        row = listing[listing.index(f'data-tracking="{tn}"'):]
        assert tn_report not in row[:row.index("</tr>")] and "关联" not in row[:row.index("</tr>")]
    # Merging refuses to tie a letter to a 举报: the reviewer may not, nor may a supervisor
    # merge an ordinary letter into a 举报 (or the other way round).
    status, answer = await act(base, reviewer, tn_ordinary, {"action": "merge",
                                                             "into": tn_report})
    assert status == 400 and "无权" in answer["error"]
    status, answer = await act(base, supervisor, tn_ordinary, {"action": "merge",
                                                               "into": tn_report})
    assert status == 400 and "举报件只能与举报件并单" in answer["error"]
    # The supervisor unlinks the 举报 from the ordinary letter: the ordinary letter's history
    # (which a reviewer reads) does not name the 举报.
    await login(client, base, supervisor.name)
    url = f"{base}/console/s/{ordinary}"
    status, _body, _loc = await post_form(client, f"{url}/unlink", {
        "csrf": await page_csrf(client, url), "other": str(report)})
    assert status == 302
    async with service.runtime.sessions() as db:
        history = await events.for_submission(db, ordinary)
    assert [e.detail for e in history if e.action == "unlink"] == [{}]
