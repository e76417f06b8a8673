"""Attachments on the public form: checked by content, size-limited while read, shown to staff only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bot.app import Service
from storage.models import Attachment, Submission
from tests.bot.citizen.steps import (
    EXE,
    LETTER,
    PDF,
    client,
    lookup,
    png,
    query_code,
    submit_multipart,
)
from tests.bot.helpers import filed, form_token, tracking_no

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200


async def count(service: Service, model) -> int:  # type: ignore[no-untyped-def]
    async with service.runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


async def test_attachments_are_stored_with_the_submission(service: Service):
    image = png(4, 3)
    files = [("现场照片.png", image, "image/png"), ("C:\\证据\\通知.pdf", PDF, "application/pdf"),
             ("IMG_0001.txt", JPEG, "text/plain")]  # the name lies, the content is a JPEG
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, files=files, body=LETTER,
                                              email="li@example.com")
        assert status == 200, html
        tn, code = tracking_no(html), query_code(html)
        await lookup(http, service.base_url, tn, code)
        async with http.get(f"{service.base_url}/status") as page:
            status_html = await page.text()
    assert "现场照片" not in status_html  # attachments are for staff only
    root = Path(service.runtime.settings.intake.attachments_dir)
    async with service.runtime.sessions() as s:
        sub = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
        rows = list(await s.scalars(
            select(Attachment).where(Attachment.submission_id == sub.id).order_by(Attachment.id)))
    got = [(a.filename, a.content_type, a.size) for a in rows]
    assert got == [("现场照片.png", "image/png", len(image)), ("通知.pdf", "application/pdf", len(PDF)),
                   ("IMG_0001.jpg", "image/jpeg", len(JPEG))]
    for att, data in zip(rows, (image, PDF, JPEG), strict=True):
        assert att.sha256 == hashlib.sha256(data).hexdigest()
        assert (root / att.sha256[:2] / att.sha256).read_bytes() == data


async def test_file_type_is_judged_by_content(service: Service):
    files = [("说明.pdf", EXE, "application/pdf"), ("ok.png", png(), "image/png")]
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, files=files, body=LETTER,
                                              name="周先生")
    assert status == 400
    assert 'id="attachments-error"' in html and "“说明.pdf”不是图片或 PDF 文件" in html
    assert 'value="周先生"' in html and LETTER in html
    assert await count(service, Submission) == 0 and await count(service, Attachment) == 0


async def test_more_than_three_files_are_refused(service: Service):
    files = [(f"{n}.png", png(n + 1, 1), "image/png") for n in range(4)]
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, files=files, body=LETTER)
    assert status == 400 and "最多可以上传 3 个附件，您选择了 4 个" in html
    assert await count(service, Submission) == 0


async def test_field_error_asks_to_choose_files_again(service: Service):
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, body="短",
                                              files=[("a.png", png(), "image/png")])
    assert status == 400 and "请修改后重新选择附件" in html


async def test_file_over_10_mb_gets_413_page(service: Service):
    big = png() + b"\x00" * (10 * 1024 * 1024)
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, body=LETTER,
                                              files=[("大图.png", big, "image/png")])
    assert status == 413 and "附件“大图.png”超过了 10 MB" in html
    assert await count(service, Submission) == 0


async def test_text_in_a_multipart_post_is_still_limited_to_1_mb(service: Service):
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, body="长" * 400_000)
    assert status == 413 and "内容太大" in html


async def test_body_larger_than_all_limits_is_refused_before_reading(service: Service):
    async with client() as http:
        token = await form_token(http, service.base_url)
        form = aiohttp.FormData()
        form.add_field("token", token)
        form.add_field("body", LETTER)
        for n in range(4):
            form.add_field("attachments", b"\x00" * (9 * 1024 * 1024), filename=f"{n}.bin")
        async with http.post(f"{service.base_url}/feedback", data=form) as resp:
            assert resp.status == 413 and "附件最多 3 个" in await resp.text()


async def test_saved_file_is_named_by_its_content_not_by_the_senders_extension(service: Service):
    from tests.bot.console.support import add_user, login

    # a valid PNG header with an HTML application behind it: Windows runs a .hta on a double click
    hta = png() + b"<HTA:APPLICATION><script>new ActiveXObject('WScript.Shell')</script>"
    files = [("整改通知.hta", hta, "application/hta"), ("现场.png.exe", png(3, 2), "image/png"),
             ("photo.JPEG", JPEG, "image/jpeg")]
    async with client() as http:
        status, html = await submit_multipart(http, service.base_url, files=files, body=LETTER)
        assert status == 200, html
        tn = tracking_no(html)
    await filed(service)
    async with service.runtime.sessions() as s:
        sub = await s.scalar(select(Submission).where(Submission.tracking_no == tn))
        rows = list(await s.scalars(
            select(Attachment).where(Attachment.submission_id == sub.id).order_by(Attachment.id)))
    assert [a.filename for a in rows] == ["整改通知.png", "现场.png", "photo.JPEG"]
    staff = await add_user(service, "reviewer9", "reviewer")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await login(http, service.base_url, staff.name)
        async with http.get(f"{service.base_url}/console/s/{sub.id}/files/{rows[0].id}") as resp:
            assert resp.status == 200
            disposition = resp.headers["Content-Disposition"]
    assert disposition.endswith(".png") and ".hta" not in disposition
