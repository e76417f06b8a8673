"""Status lookup, follow-ups and ratings over HTTP, against the real service (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

from sqlalchemy import select

from bot.app import Service
from storage.models import Event, Followup, Submission
from testing.smtp import SmtpSink
from tests.bot.citizen.conftest import StartService
from tests.bot.citizen.steps import client, lookup, post_on_status, resolve, submit_letter
from tests.bot.helpers import filed

STRIP_TOKEN = re.compile(r'name="token" value="[^"]+"')


async def test_lookup_shows_status_without_code_in_any_url(service: Service):
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url, email="sun@example.com")
        await filed(service)  # a lookup of a letter still being filed is its own test
        resp = await lookup(http, service.base_url, tn.lower().replace("-", " "), f" {code} ")
        assert resp.status == 303 and resp.headers["Location"] == "/status"
        cookie = SimpleCookie(resp.headers["Set-Cookie"])["fb_status"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/status" and code not in cookie.value
        async with http.get(f"{service.base_url}/status") as page:
            html = await page.text()
            assert code not in str(page.url) and page.headers["Cache-Control"] == "no-store"
    assert f'id="tracking-number">{tn}<' in html
    assert 'id="stage">待受理<' in html
    assert "15 日内决定是否受理" in html and "60 日内办结" in html
    assert re.search(r'id="received">\d{4}年\d{2}月\d{2}日 \d{2}:\d{2}<', html)
    assert "暂时还没有答复" in html
    assert "评价办理结果" not in html  # only once resolved


async def test_wrong_pairs_get_one_message(service: Service):
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url)
        other_tn, _ = await submit_letter(http, service.base_url)
        wrong_code = f"{(int(code) + 1) % 10**6:06d}"
        pages = []
        for pair in [(tn, wrong_code), (other_tn, code), ("FK-2345-6789", code), ("", "")]:
            resp = await lookup(http, service.base_url, *pair)
            assert resp.status == 400 and "Set-Cookie" not in resp.headers
            pages.append(STRIP_TOKEN.sub("", (await resp.text()).replace(pair[0], "")))
        async with http.get(f"{service.base_url}/status") as page:
            assert 'id="tracking-number"' not in await page.text()
    assert len(set(pages)) == 1
    assert "受理编号或查询码不正确" in pages[0]


async def test_lookups_are_rate_limited_per_address(start_service: StartService):
    service = await start_service(web={"lookups_per_hour": 3, "trusted_proxies": ["127.0.0.1"]})
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url)
        for _ in range(3):
            assert (await lookup(http, service.base_url, "FK-2345-6789", "000000")).status == 400
        limited = await lookup(http, service.base_url, tn, code)
        assert limited.status == 429
        assert 600 <= int(limited.headers["Retry-After"]) <= 1200
        text = await limited.text()
        assert "操作太频繁" in text and "分钟后再试" in text
        # Behind a trusted proxy the client is the forwarded address, which has its own bucket.
        via_proxy = await lookup(http, service.base_url, tn, code,
                                 headers={"X-Forwarded-For": "203.0.113.7"})
        assert via_proxy.status == 303


async def test_forwarded_for_from_untrusted_peer_is_ignored(start_service: StartService):
    service = await start_service(web={"lookups_per_hour": 2})
    async with client() as http:
        for n in range(3):
            spoof = {"X-Forwarded-For": f"198.51.100.{n}"}
            resp = await lookup(http, service.base_url, "FK-2345-6789", "000000", headers=spoof)
        assert resp.status == 429


async def test_one_tracking_number_is_not_guessable_from_many_addresses(
        start_service: StartService):
    service = await start_service(web={"lookups_per_hour": 3, "trusted_proxies": ["127.0.0.0/8"]})
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url)
        for n in range(3):
            await lookup(http, service.base_url, tn, "000000",
                         headers={"X-Forwarded-For": f"198.51.100.{n}"})
        resp = await lookup(http, service.base_url, tn, code,
                            headers={"X-Forwarded-For": "198.51.100.99"})
        assert resp.status == 429


async def test_followup_is_filed_in_the_staff_history(service: Service):
    addition = "补充一下：第三次去的时候是上周五下午，窗口工作人员姓王。"
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url, email="zhou@example.com")
        status, html = await post_on_status(http, service.base_url, "/status/followup",
                                            text=addition)
        assert status == 403 and "查询已超时" in html  # no access without a lookup
        await lookup(http, service.base_url, tn, code)
        status, html = await post_on_status(http, service.base_url, "/status/followup", text="短")
        assert status == 400 and 'id="text-error"' in html and ">短</textarea>" in html
        for _ in range(2):  # a double click files it once
            status, html = await post_on_status(http, service.base_url, "/status/followup",
                                                text=addition)
    assert status == 200 and "已收到您的补充内容" in html and addition in html
    await filed(service)  # stored as raw intake; the intake worker files it
    async with service.runtime.sessions() as s:
        sub = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
        [fu] = list(await s.scalars(select(Followup).where(Followup.submission_id == sub.id)))
        assert fu.text == addition and fu.channel == "web" and fu.from_addr == "zhou@example.com"
        actions = [(e.actor, e.action) for e in await s.scalars(
            select(Event).where(Event.submission_id == sub.id).order_by(Event.id))]
    assert ("citizen", "followup") in actions


async def test_reply_and_rating_once_resolved(service: Service, smtp_sink: SmtpSink):
    reply = "您好，经核查，该派出所已实行一次性告知制度，并对相关人员进行了批评教育。"
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url, email="wu@example.com")
        await filed(service)  # a lookup of a letter still being filed is its own test
        await lookup(http, service.base_url, tn, code)
        status, html = await post_on_status(http, service.base_url, "/status/rating",
                                            satisfaction="满意")
        assert status == 400 and "办结以后才可以评价" in html
        await resolve(service, tn, reply)
        async with http.get(f"{service.base_url}/status") as page:
            html = await page.text()
        assert 'id="stage">已办结<' in html and reply in html and "评价办理结果" in html
        status, html = await post_on_status(http, service.base_url, "/status/rating",
                                            satisfaction="不满意", comment="速度太慢")
        assert status == 200 and "谢谢您的评价" in html and "不满意" in html
        status, html = await post_on_status(http, service.base_url, "/status/rating",
                                            satisfaction="基本满意")
        assert 'id="current-rating">您的评价：<strong>基本满意</strong>' in html
        status, html = await post_on_status(http, service.base_url, "/status/rating",
                                            satisfaction="great")
        assert status == 400 and "请选择" in html
    async with service.runtime.sessions() as s:
        sub = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
        assert sub.satisfaction == "基本满意" and sub.rating_comment is None
        actions = [e.action for e in await s.scalars(
            select(Event).where(Event.submission_id == sub.id, Event.actor == "citizen"))]
    assert actions == ["rated", "rating-changed"]


async def test_leaving_ends_access(service: Service):
    async with client() as http:
        tn, code = await submit_letter(http, service.base_url)
        await filed(service)  # a lookup of a letter still being filed is its own test
        await lookup(http, service.base_url, tn, code)
        status, html = await post_on_status(http, service.base_url, "/status/logout")
        assert status == 200 and 'id="lookup"' in html
        async with http.get(f"{service.base_url}/status") as page:
            assert tn not in await page.text()


async def test_forged_access_cookie_is_refused(service: Service):
    async with client() as http:
        tn, _ = await submit_letter(http, service.base_url)
        http.cookie_jar.update_cookies({"fb_status": f"{tn}.9999999999.{'0' * 32}"})
        async with http.get(f"{service.base_url}/status") as page:
            assert 'id="tracking-number"' not in await page.text()


async def test_privacy_notice_states_retention(start_service: StartService):
    service = await start_service(intake={"retention_days": 730})
    async with client() as http:
        async with http.get(f"{service.base_url}/feedback") as resp:
            assert 'href="/privacy"' in await resp.text()
        async with http.get(f"{service.base_url}/privacy") as resp:
            html = await resp.text()
    assert resp.status == 200 and "2 年后" in html and "谁能看到" in html


async def test_broken_bodies_get_the_400_page(service: Service):
    bodies = [("multipart/form-data; boundary=xyz", b"\xff\xfe--junk"),
              ("application/x-www-form-urlencoded; charset=no-such-charset", b"a=%ff")]
    async with client() as http:
        for path in ("/feedback", "/status", "/status/followup", "/status/rating"):
            for ctype, body in bodies:
                async with http.post(f"{service.base_url}{path}", data=body,
                                     headers={"Content-Type": ctype}) as resp:
                    assert resp.status == 400, (path, ctype)
                    assert "请求有误" in await resp.text()


async def test_letter_still_being_filed_is_not_called_wrong(service: Service):
    """The form answers once the letter is stored; looked up before the intake worker has filed
    it, the number is not "wrong": the citizen with the right code is told it is being filed,
    anyone else gets the usual message."""
    from datetime import timedelta

    from handlers import tracking
    from storage import raw_intake
    from storage.db import utcnow
    from storage.models import RawIntake

    tn = "FK-WAIT-0001"
    async with service.runtime.sessions.begin() as s:
        raw_id = await raw_intake.add(s, channel="web", source_key="web:waiting", tracking_no=tn,
                                      payload={"fields": {"body": "路灯坏了三个月没人修。"}})
        # held for a later retry: the worker leaves it alone during this test
        row = await s.get(RawIntake, raw_id)
        row.state, row.retry_at = "held", utcnow() + timedelta(hours=1)
    code = tracking.query_code_for(service.runtime.secret, tn)
    async with client() as http:
        resp = await lookup(http, service.base_url, tn, code)
        html = await resp.text()
        assert resp.status == 200 and "正在登记" in html
        wrong = "000000" if code != "000000" else "111111"
        resp = await lookup(http, service.base_url, tn, wrong)
        html = await resp.text()
        assert resp.status == 400 and "正在登记" not in html and "不正确" in html


async def test_followup_goes_through_raw_intake_and_shows_before_it_is_filed(
        db_url: str, tmp_path, smtp_sink: SmtpSink):
    """A follow-up is stored first, as raw intake with its case's tracking number, like every
    other input; the citizen sees it at once; the intake worker files it as a follow-up."""
    from bot.app import start
    from bot.workers.intake import drain
    from storage.models import RawIntake
    from tests.conftest import make_settings

    addition = "再补充一点：办证窗口下午四点就不再叫号了，比公示的时间早一个小时。"
    service = await start(make_settings(db_url, tmp_path, smtp_sink), workers=False)
    rt = service.runtime
    try:
        async with client() as http:
            tn, code = await submit_letter(http, service.base_url, email="qian@example.com")
            await drain(rt)  # the letter itself, filed by the worker's own function
            await lookup(http, service.base_url, tn, code)
            status, html = await post_on_status(http, service.base_url, "/status/followup",
                                                text=addition)
            assert status == 200 and addition in html  # shown while still being filed
        async with rt.sessions() as s:
            sub = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
            assert not list(await s.scalars(select(Followup)))
            [row] = list(await s.scalars(select(RawIntake).where(
                RawIntake.tracking_no == tn, RawIntake.state == "pending")))
        assert row.channel == "web" and row.raw is None
        await drain(rt)
        async with rt.sessions() as s:
            [fu] = list(await s.scalars(select(Followup)))
            done = await s.get(RawIntake, row.id)
            count = len(list(await s.scalars(select(Submission.id))))
        assert fu.submission_id == sub.id and fu.raw_intake_id == row.id and fu.text == addition
        assert done.state == "done" and done.submission_id == sub.id
        assert count == 1  # a follow-up, not a new letter
    finally:
        await service.stop()
