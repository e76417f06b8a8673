"""The public form against the real assembly: SQLite and PostgreSQL, a real SMTP server."""

from __future__ import annotations

import asyncio
import email.policy
from email.parser import BytesParser

import aiohttp
from sqlalchemy import func, select

from bot.app import Service
from handlers import tracking
from storage.models import Outbox, RawIntake, Submission
from testing.smtp import SmtpSink
from tests.bot.helpers import TOKEN, filed, form_token, submit, tracking_no, wait_mail

LETTER = "派出所办户口的窗口中午不开门，我请假去排了两个小时也没办成，希望整改措施能落到实处。"


async def count(service: Service, model) -> int:  # type: ignore[no-untyped-def]
    async with service.runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


async def test_submission_is_stored_and_acknowledged(service: Service, smtp_sink: SmtpSink):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, body=LETTER, name="张三",
                                    email="Zhang.San@QQ.com", phone="0513-12345678")
    assert status == 200
    tn = tracking_no(html)
    assert tn.startswith("FK-") and not set("01OI") & set(tn[3:])
    assert "zhang.san@qq.com" in html

    [received] = await wait_mail(smtp_sink, 1, timeout=10)
    msg = received.message
    assert received.rcpt_tos == ["zhang.san@qq.com"]
    assert tn in str(msg["Subject"]) and "已收到" in str(msg["Subject"])
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    # Signed with our secret on our own host, never the mailbox's provider (163.com).
    assert tracking.verify_message_id(service.runtime.secret, msg["Message-ID"]) == tn
    assert msg["Message-ID"].endswith(f"@{service.runtime.settings.message_id_domain}>")
    assert not msg["Message-ID"].endswith("@163.com>")
    assert msg["Date"] is not None
    text = msg.get_body(("plain",)).get_content()
    html_part = msg.get_body(("html",)).get_content()
    assert tn in text and tn in html_part
    assert "张三，您好" in text and "两个小时" in text
    assert "15 日内" in text and "60 日内" in text

    async with service.runtime.sessions() as s:
        sub = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
        assert sub is not None and sub.channel == "web" and sub.text == LETTER
        assert sub.from_addr == "zhang.san@qq.com" and sub.phone == "0513-12345678"
        # Filed by the real classifier: the police-station window is measure 1.10.
        assert sub.category == "1" and sub.measure == "1.10" and sub.kind == "complaint"
        assert sub.model_version and sub.taxonomy_version and 0 < sub.confidence <= 1
        assert sub.explanation and sub.top["top"][0][0] == "1"
        raw = await s.scalar(select(RawIntake).where(RawIntake.submission_id == sub.id))
        assert raw.state == "done" and raw.payload["fields"]["body"] == LETTER


async def test_invalid_input_shows_field_errors_and_keeps_input(service: Service):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, body="太短", email="not-an-address",
                                    phone="call me", name="李四")
    assert status == 400
    assert 'id="body-error"' in html and "至少写 5 个字" in html
    assert 'id="email-error"' in html and "邮箱地址格式不正确" in html
    assert 'id="phone-error"' in html
    assert 'value="李四"' in html and ">太短</textarea>" in html
    assert await count(service, Submission) == 0


async def test_double_submit_stores_one(service: Service, smtp_sink: SmtpSink):
    async with aiohttp.ClientSession() as http:
        token = await form_token(http, service.base_url)
        fields = {"body": LETTER, "email": "wang@example.com"}
        results = await asyncio.gather(
            *[submit(http, service.base_url, token=token, **fields) for _ in range(3)]
        )
    numbers = {tracking_no(html) for status, html in results if status == 200}
    assert len(numbers) == 1
    await filed(service)
    assert await count(service, Submission) == 1
    await wait_mail(smtp_sink, 1, timeout=10)
    await asyncio.sleep(0.5)
    assert len(smtp_sink.messages) == 1


async def test_each_visit_gets_its_own_form_and_letter(service: Service):
    """The blank form is rendered once and served with a fresh token each time: two visitors'
    letters are two letters with two numbers, never one the other's duplicate."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{service.base_url}/feedback") as resp:
            first_page = await resp.text()
            assert resp.status == 200 and resp.content_type == "text/html"
            assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        async with http.get(f"{service.base_url}/") as resp:
            second_page = await resp.text()
        tokens_ = [TOKEN.findall(page) for page in (first_page, second_page)]
        assert [len(t) for t in tokens_] == [1, 1]
        tokens_ = [t[0] for t in tokens_]
        assert tokens_[0] != tokens_[1]
        assert first_page.replace(tokens_[0], "") == second_page.replace(tokens_[1], "")
        assert "15 日内决定是否受理" in first_page and "\x00" not in first_page
        results = [await submit(http, service.base_url, token=t, body=LETTER) for t in tokens_]
    assert [status for status, _ in results] == [200, 200]
    assert len({tracking_no(html) for _, html in results}) == 2
    await filed(service)
    assert await count(service, Submission) == 2


async def test_expired_or_forged_token_keeps_input(service: Service):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, token="forged.123.abc", body=LETTER)
    assert status == 400
    assert "页面已过期或无效" in html and LETTER in html
    assert await count(service, Submission) == 0


async def test_honeypot_is_kept_but_not_filed(service: Service, smtp_sink: SmtpSink):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, body=LETTER, website="http://x.example",
                                    email="bot@example.com")
    assert status == 200 and "tracking-number" not in html
    assert await count(service, Submission) == 0
    assert await count(service, RawIntake) == 1
    await asyncio.sleep(0.5)
    assert smtp_sink.messages == []


async def test_form_sent_again_without_the_bots_field_files_nothing(service: Service):
    """A form first sent with the hidden field filled, then again with the same token: the
    second answer is the first one's (received, nothing filed), never an error page."""
    async with aiohttp.ClientSession() as http:
        token = await form_token(http, service.base_url)
        await submit(http, service.base_url, token=token, body=LETTER, website="http://x.example")
        status, html = await submit(http, service.base_url, token=token, body=LETTER)
    assert status == 200 and "tracking-number" not in html
    await filed(service)
    assert await count(service, Submission) == 0


async def test_oversized_request_gets_413_page(service: Service):
    async with aiohttp.ClientSession() as http:
        token = await form_token(http, service.base_url)
        data = {"token": token, "body": "长" * 600_000}
        async with http.post(f"{service.base_url}/feedback", data=data) as resp:
            assert resp.status == 413
            assert "内容太大" in await resp.text()


async def test_cross_site_post_is_refused(service: Service):
    async with aiohttp.ClientSession() as http:
        token = await form_token(http, service.base_url)
        # "null": what a sandboxed iframe or a data: page on another site sends
        for origin in ("https://evil.example", "null"):
            for path, data in (("/feedback", {"token": token, "body": LETTER}),
                               ("/status", {"token": token, "tracking_no": "FK-AAAA-AAAA",
                                            "query_code": "123456"}),
                               ("/status/followup", {"token": token, "text": LETTER})):
                async with http.post(f"{service.base_url}{path}", data=data,
                                     headers={"Origin": origin}) as resp:
                    assert resp.status == 403, (origin, path)
    assert await count(service, Submission) == 0


async def test_header_injection_in_name_adds_no_header(service: Service, smtp_sink: SmtpSink):
    async with aiohttp.ClientSession() as http:
        status, _ = await submit(http, service.base_url, body=LETTER, email="zhao@example.com",
                                 name="赵\r\nBcc: victim@example.com", subject="问题\r\nX-Evil: 1")
    assert status == 200
    [received] = await wait_mail(smtp_sink, 1, timeout=10)
    assert received.rcpt_tos == ["zhao@example.com"]
    headers = BytesParser(policy=email.policy.default).parsebytes(received.content)
    assert headers["Bcc"] is None and headers["X-Evil"] is None


async def test_anonymous_submission_gets_no_mail(service: Service, smtp_sink: SmtpSink):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, body=LETTER)
    assert status == 200 and "无法给您发送回复" in html
    async with service.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Outbox)) == 0


async def test_security_headers_and_error_pages(service: Service):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{service.base_url}/feedback") as resp:
            csp = resp.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(f"{service.base_url}/no-such-page") as resp:
            assert resp.status == 404 and "页面不存在" in await resp.text()


async def test_healthz_and_metrics(service: Service):
    async with aiohttp.ClientSession() as http:
        await submit(http, service.base_url, body=LETTER)
        await filed(service)
        async with http.get(f"{service.base_url}/healthz") as resp:
            body = await resp.json()
        assert resp.status == 200 and body["database"] == "ok"
        assert body["workers"]["outbox"]["state"] in ("running", "starting")
        async with http.get(f"{service.base_url}/metrics") as resp:
            text = await resp.text()
    assert 'feedback_intake_total{channel="web"} 1.0' in text
    assert "feedback_raw_intake_rows" in text


async def test_each_done_page_shows_its_own_number_code_and_address(service: Service):
    """The page after a POST is rendered once per variant and filled in: each citizen sees
    their own number, query code and address, never the previous writer's."""
    writers = ["zhang@163.com", None, "li.si@qq.com", None]
    pages = []
    async with aiohttp.ClientSession() as http:
        for i, address in enumerate(writers):
            fields = {"body": f"{LETTER}（第 {i + 1} 封）"}
            if address:
                fields["email"] = address
            status, html = await submit(http, service.base_url, **fields)
            assert status == 200
            pages.append(html)
    numbers = [tracking_no(html) for html in pages]
    assert len(set(numbers)) == len(writers)
    for html, number, address in zip(pages, numbers, writers, strict=True):
        code = tracking.query_code_for(service.runtime.secret, number)
        assert f'id="query-code">{code}<' in html
        for other in writers:
            if other and other != address:
                assert other not in html
        if address:
            assert f"<strong>{address}</strong>" in html
        else:
            assert "您没有留下邮箱" in html
        assert "\x00" not in html
