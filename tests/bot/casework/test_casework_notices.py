"""Casework against the real servers (SQLite and PostgreSQL, aiosmtpd): every step's notice
reaches the citizen's mailbox threaded under the acknowledgement, staff replies too; the write
API applies the console's rules and answers bad requests with a Chinese 400."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import aiohttp

from bot.app import Service
from handlers import tracking
from storage import events, notices
from storage import review_list as queue
from storage.db import utcnow
from testing.smtp import SmtpSink
from tests.bot.casework.support import Staff, act, get, next_mail, text_of
from tests.bot.citizen.steps import client as citizen_client
from tests.bot.citizen.steps import lookup
from tests.bot.console.support import file_letter, login, page_csrf, post_form
from tests.bot.helpers import wait_mail

CITIZEN = "li.citizen@qq.com"
LETTER = "镇派出所办理户口迁移一拖再拖，跑了五趟都说材料不全，又不一次性告知缺什么。"


def _today(service: Service):  # type: ignore[no-untyped-def]
    return utcnow().astimezone(ZoneInfo(service.runtime.settings.digest.timezone)).date()


async def _tracking_no(service: Service, sid: int) -> str:
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
    assert sub is not None
    return sub.tracking_no


async def test_every_step_notifies_the_citizen_threaded_under_the_ack(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    sid = await file_letter(service, LETTER, subject="户口迁移", email=CITIZEN, name="李先生")
    tn = await _tracking_no(service, sid)
    [ack] = await wait_mail(smtp_sink, 1)
    ack_id = ack.message["Message-ID"]
    today = _today(service)
    steps = [
        ({"action": "accept"}, "受理告知书", [tn, str((today + timedelta(days=60)).year)]),
        ({"action": "forward", "unit": "公安局", "due": str(today + timedelta(days=20)),
          "reason": "属于户籍管理"}, "转办告知书", ["公安局"]),
        ({"action": "extend", "reason": "需要调取十年前的户籍档案"}, "延期办理告知书",
         ["需要调取十年前的户籍档案", "延长 30 日"]),
        ({"action": "resolve", "reply": "经核查，派出所已为您办结迁移手续，并对窗口人员批评教育。"},
         "信访事项答复意见书", ["已为您办结迁移手续", "请求复查"]),
        ({"action": "request_review", "reason": "答复没有说明为何拖了半年"}, "复查申请收到告知",
         ["答复没有说明为何拖了半年"]),
        ({"action": "answer_review", "reply": "复查认为原答复意见正确，拖延原因是档案缺失。"},
         "复查意见书", ["档案缺失", "请求复核"]),
        ({"action": "request_recheck", "reason": "档案缺失不是我的责任"}, "复核申请收到告知", []),
        ({"action": "answer_recheck", "reply": "复核维持复查意见。"}, "复核意见书", ["最终意见"]),
    ]
    for n, (body, title, words) in enumerate(steps, start=1):
        status, answer = await act(base, supervisor, tn, body)
        assert status == 200, (body, answer)
        mail = await next_mail(smtp_sink, n)
        assert mail.rcpt_tos == [CITIZEN]
        assert title in str(mail.message["Subject"]) and tn in str(mail.message["Subject"])
        assert mail.message["In-Reply-To"] == ack_id, title
        assert mail.message["References"].split()[-1] == ack_id, title
        text = text_of(mail)
        for word in [title, *words]:
            assert word in text, (title, word)
    assert answer["status"] == "rechecked"
    # the extension moved the handling deadline 60 + 30 days from today's acceptance
    status, got = await get(base, supervisor, tn)
    assert status == 200 and got["handle_due"] == str(today + timedelta(days=90))
    assert got["accept_due"] == str(today + timedelta(days=15))
    async with service.runtime.sessions() as db:
        given = await notices.for_submission(db, sid)
        history = [e.action for e in await events.for_submission(db, sid)]
    assert [x.title for x in given] == [title for _b, title, _w in steps]
    assert all(x.message_id for x in given) and history.count("status") == 7
    assert "extend" in history

    # A staff reply is threaded the same way (it used to start a thread of its own).
    await login(client, base, supervisor.name)
    url = f"{base}/console/s/{sid}"
    status, _page, _loc = await post_form(client, f"{url}/reply", {
        "csrf": await page_csrf(client, url), "body": "补充说明：窗口人员已调岗。"})
    assert status == 302
    reply = await next_mail(smtp_sink, len(steps) + 1)
    assert reply.message["In-Reply-To"] == ack_id and "窗口人员已调岗" in text_of(reply)


async def test_the_api_refuses_what_the_workflow_forbids_with_a_chinese_message(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff) -> None:
    base = service.base_url
    sid = await file_letter(service, "小区门口的红绿灯坏了两个星期。", email="zhao@163.com")
    tn = await _tracking_no(service, sid)
    await wait_mail(smtp_sink, 1)
    past = str(_today(service) - timedelta(days=1))
    for body, words in (
        ({"action": "approve"}, "未知的操作"),
        ({"action": "resolve", "reply": "好"}, "不能“办结并答复”"),
        ({"action": "reject"}, "需要填写理由"),
        ({"action": "forward", "unit": "法院", "due": past}, "已经过去"),
        ({"action": "forward", "unit": "交通局", "due": str(_today(service))}, "单位名单"),
        ({"reason": "x"}, "action"),
        (["accept"], "JSON 对象"),
        ({"action": "accept", "reason": {"x": 1}}, "应为字符串"),
        ({"action": "accept", "reason": "a\x00b"}, "空字符"),
    ):
        status, answer = await act(base, supervisor, tn, body)
        assert status == 400 and words in answer["error"], (body, answer)
    status, answer = await act(base, supervisor, tn, None, raw=b"{not json")
    assert status == 400 and "JSON" in answer["error"]
    status, answer = await act(base, supervisor, "FK-2222-2222", {"action": "accept"})
    assert status == 404 and answer["error"]
    assert (await act(base, supervisor, tn, {"action": "accept"}))[0] == 200
    assert (await act(base, supervisor, tn, {"action": "extend", "reason": "复杂",
                                             "days": "10"}))[0] == 200
    status, answer = await act(base, supervisor, tn, {"action": "extend", "reason": "还要延"})
    assert status == 400 and "只能延期一次" in answer["error"]
    assert answer["error"] and (await get(base, supervisor, tn))[1]["extended_days"] == 10
    async with service.runtime.sessions() as db:
        kinds = [x.kind for x in await notices.for_submission(db, sid)]
    assert kinds == ["accept", "extend"]  # nothing refused left a notice


async def test_a_reviewer_token_acts_only_where_a_reviewer_may(
        service: Service, smtp_sink: SmtpSink, reviewer: Staff, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    report = await file_letter(service, "举报镇长收受开发商红包，请为我保密。", email="jb@qq.com",
                               kind="report")
    ordinary = await file_letter(service, "公园的厕所太少，节假日排长队。", email="pk@qq.com")
    report_tn, ordinary_tn = (await _tracking_no(service, report),
                              await _tracking_no(service, ordinary))
    await wait_mail(smtp_sink, 2)
    status, answer = await act(base, reviewer, report_tn, {"action": "accept"})
    assert status == 403 and "举报" in answer["error"]
    status, answer = await act(base, reviewer, ordinary_tn, {"action": "accept"})
    assert status == 200 and answer["status"] == "accepted" and answer["handle_due"]
    # The supervisor answers the 举报; its notice goes to its citizen only.
    reply = "经查，镇长收受红包一事已移交纪委监委调查。"
    status, answer = await act(base, supervisor, report_tn, {"action": "accept"})
    assert status == 200
    status, answer = await act(base, supervisor, report_tn, {"action": "resolve", "reply": reply})
    assert status == 200 and answer["text"]
    mails = await wait_mail(smtp_sink, 5)
    assert [m.rcpt_tos for m in mails if reply in text_of(m)] == [["jb@qq.com"]]
    # The reviewer sees where the case stands, never the notice: not in the API, not printed,
    # not on the letter page.
    status, seen = await get(base, reviewer, report_tn)
    assert status == 200 and seen["status"] == "resolved" and seen["handle_due"]
    assert reply not in str(seen) and "text" not in seen
    await login(client, base, reviewer.name)
    async with client.get(f"{base}/console/submissions/{report}/notices/2/print",
                          allow_redirects=False) as resp:
        assert resp.status == 403 and reply not in await resp.text()
    async with client.get(f"{base}/console/s/{report}") as resp:
        page = await resp.text()
    assert resp.status == 200 and reply not in page and "已办结" in page
    async with client.get(f"{base}/console/submissions/{ordinary}/notices/1/print") as resp:
        page = await resp.text()
    assert resp.status == 200 and "受理告知书" in page and ordinary_tn in page
    async with client.get(f"{base}/console/submissions/{ordinary}/notices/9/print",
                          allow_redirects=False) as resp:
        assert resp.status == 404


async def test_a_refusal_is_the_answer_on_the_status_page_and_a_phone_letter_gets_a_print_view(
        service: Service, smtp_sink: SmtpSink, supervisor: Staff,
        client: aiohttp.ClientSession) -> None:
    base = service.base_url
    sid = await file_letter(service, "我家和邻居因为宅基地边界吵了三年，请你们来划一下界。",
                            channel="phone", name="孙大爷")
    tn = await _tracking_no(service, sid)
    reason = "宅基地边界争议属于土地权属纠纷，不属于政法委受理范围"
    status, answer = await act(base, supervisor, tn, {"action": "reject", "reason": reason,
                                                      "unit": "镇人民政府"})
    assert status == 200 and answer["status"] == "rejected"
    async with service.runtime.sessions() as db:
        [notice] = await notices.for_submission(db, sid)
    assert notice.message_id is None and notice.not_mailed == "no address"
    assert reason in notice.text and "镇人民政府" in notice.text and "诉讼" in notice.text
    await login(client, base, supervisor.name)
    async with client.get(f"{base}/console/s/{sid}") as resp:
        page = await resp.text()
    assert "未发邮件，请打印送达" in page and f"/console/submissions/{sid}/notices/1/print" in page
    async with client.get(f"{base}/console/submissions/{sid}/notices/1/print") as resp:
        printed = await resp.text()
    assert resp.status == 200 and "不予受理告知书" in printed and reason in printed
    assert "孙大爷" in printed and "@page" not in printed  # print CSS is a stylesheet (CSP)
    # The citizen, on the status page: the refusal notice is the answer, nothing contradicts it.
    code = tracking.query_code_for(service.runtime.secret, tn)
    async with citizen_client() as http:
        assert (await lookup(http, base, tn, code)).status == 303
        async with http.get(f"{base}/status") as resp:
            page = await resp.text()
    assert 'id="stage">不予受理<' in page and "不予受理告知书" in page and reason in page
    assert "暂时还没有答复" not in page and 'id="no-reply"' not in page
