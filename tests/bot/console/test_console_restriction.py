"""The restriction of a 举报 as its own fact (Submission.restricted), on SQLite and PostgreSQL:
the writer's choice on the web form and at staff entry restricts whatever the classifier says,
the classifier's decision restricts, supervisors lift and set it with a reason (audited),
reviewers can do neither and see a restricted letter only as restricted."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import select

from bot.app import Service
from storage import events, submissions
from storage import review_list as queue
from storage.models import Submission
from tests.bot.console.support import (
    Staff,
    csrf_of,
    entered,
    file_letter,
    login,
    page_csrf,
    post_form,
)
from tests.bot.helpers import filed, submit, tracking_no

# Nothing in it sounds like a 举报: only the writer's choice can restrict it.
PLAIN = "小区门口的公交站台顶棚破了一个大洞，下雨天等车的老人没地方躲，希望尽快修一修。"
NAME, PHONE = "陈小红", "139-1234-5678"


async def _by_tracking_no(service: Service, tn: str) -> Submission:
    async with service.runtime.sessions() as db:
        sub = await submissions.by_tracking_no(db, tn)
    assert sub is not None
    return sub


async def _get(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def _reviewer_sees_only_that_it_exists(service: Service, http: aiohttp.ClientSession,
                                             sub: Submission, secrets: list[str]) -> None:
    """Queue, letter page and search, as a reviewer: the row is there, nothing of its content."""
    base = service.base_url
    queue_page = await _get(http, f"{base}/console")
    assert sub.tracking_no in queue_page and "举报内容仅主管" in queue_page
    letter = await _get(http, f"{base}/console/s/{sub.id}")
    assert 'id="restricted"' in letter and 'id="form-restriction"' not in letter
    found = await _get(http, f"{base}/console?q=公交站台")
    assert 'id="empty"' in found
    for page in (queue_page, letter, found):
        for secret in secrets:
            assert secret not in page


async def test_writer_chooses_report_on_the_form_and_it_is_restricted(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, body=PLAIN, name=NAME, phone=PHONE,
                                    report="real")
    assert status == 200
    await filed(service)
    sub = await _by_tracking_no(service, tracking_no(html))
    assert sub.restricted and sub.restricted_by == "writer" and sub.from_name == NAME
    assert sub.kind != "report"  # the classifier did not call it one
    await login(client, service.base_url, reviewer.name)
    await _reviewer_sees_only_that_it_exists(service, client, sub, [PLAIN[:12], NAME, PHONE])


async def test_anonymous_report_needs_no_name_and_keeps_none(service: Service):
    async with aiohttp.ClientSession() as http:
        status, html = await submit(http, service.base_url, body=PLAIN, name=NAME,
                                    report="anonymous")
        assert status == 200
        # 实名 without a name is refused kindly, with everything typed kept.
        status, html_real = await submit(http, service.base_url, body=PLAIN, report="real")
        # A forged value is a clear error, never a crash.
        status_bad, html_bad = await submit(http, service.base_url, body=PLAIN, report="maybe")
    assert status == 400 and 'id="name-error"' in html_real and "匿名举报" in html_real
    assert 'value="real" aria-describedby="report-real-hint" checked' in html_real
    assert status_bad == 400 and 'id="report-error"' in html_bad
    await filed(service)
    sub = await _by_tracking_no(service, tracking_no(html))
    assert sub.restricted and sub.restricted_by == "writer"
    assert sub.from_name is None and sub.flags == {"report": "anonymous"}
    async with service.runtime.sessions() as db:
        count = len(list(await db.scalars(select(Submission.id))))
    assert count == 1


async def test_staff_entry_records_the_callers_choice(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    await login(client, base, reviewer.name)
    page = await _get(client, f"{base}/console/new")
    form = {"csrf": csrf_of(page), "nonce": re.search(r'name="nonce" value="([^"]+)"', page)[1],
            "channel": "phone", "name": NAME, "phone": PHONE, "email": "", "subject": "",
            "body": PLAIN, "report": "real"}
    status, body, _location = await post_form(client, f"{base}/console/new", form)
    assert status == 200
    sid = await entered(service, body)
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
    assert sub is not None and sub.restricted and sub.restricted_by == "writer"
    # The reviewer who typed it in no longer reads it: it went to the supervisors.
    await _reviewer_sees_only_that_it_exists(service, client, sub, [PLAIN[:12], NAME, PHONE])


async def test_classifier_decision_restricts_a_report_it_does_not_call_one(service: Service):
    """The recall-tuned decision: misconduct words restrict whatever the kind."""
    sid = await file_letter(service, "窗口那个办事员收了两条烟才给我盖章，不送就一直说材料不齐。")
    plain = await file_letter(service, PLAIN)
    async with service.runtime.sessions() as db:
        sub, open_one = await queue.get(db, sid), await queue.get(db, plain)
        history = await events.for_submission(db, sid)
    assert sub is not None and sub.restricted and sub.restricted_by == "classifier"
    assert open_one is not None and not open_one.restricted and open_one.restricted_by is None
    [received] = [e for e in history if e.action == "received"]
    assert received.detail["restricted"] == "classifier"


async def _restriction_post(http: aiohttp.ClientSession, base: str, sid: int, restricted: str,
                            reason: str) -> tuple[int, str]:
    token = await page_csrf(http, f"{base}/console")
    status, _body, location = await post_form(
        http, f"{base}/console/s/{sid}/restriction",
        {"csrf": token, "restricted": restricted, "reason": reason})
    return status, location


async def test_supervisor_lifts_and_sets_the_restriction_with_a_reason_audited(
        service: Service, supervisor: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    sid = await file_letter(service, PLAIN, name=NAME)
    await login(client, base, supervisor.name)
    page = await _get(client, f"{base}/console/s/{sid}")
    assert 'id="form-restriction"' in page and "设为举报" in page
    status, _ = await _restriction_post(client, base, sid, "1", "")  # a reason is required
    assert status == 302
    async with service.runtime.sessions() as db:
        assert not (await queue.get(db, sid)).restricted  # type: ignore[union-attr]
    assert await _restriction_post(client, base, sid, "1", "来电补充：所述为干警受贿") \
        == (302, f"/console/s/{sid}")
    assert await _restriction_post(client, base, sid, "0", "核实为普通建议，来信人同意公开") \
        == (302, f"/console/s/{sid}")
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
        history = [(e.action, e.actor, (e.detail or {}).get("reason"))
                   for e in await events.for_submission(db, sid)
                   if e.action in ("restrict", "unrestrict")]
    assert sub is not None and not sub.restricted and sub.restricted_by is None
    assert history == [("restrict", supervisor.name, "来电补充：所述为干警受贿"),
                       ("unrestrict", supervisor.name, "核实为普通建议，来信人同意公开")]
    page = await _get(client, f"{base}/console/s/{sid}")
    assert "设为举报（保密）" in page and "解除举报保密" in page  # both lines of history


async def test_reviewer_cannot_lift_or_set_it(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    shut = await file_letter(service, "举报派出所副所长收受红包", kind="report")
    open_one = await file_letter(service, PLAIN)
    await login(client, base, reviewer.name)
    assert 'id="form-restriction"' not in await _get(client, f"{base}/console/s/{open_one}")
    assert (await _restriction_post(client, base, shut, "0", "想看看内容"))[0] == 403
    assert (await _restriction_post(client, base, open_one, "1", "像举报"))[0] == 403
    async with service.runtime.sessions() as db:
        assert (await queue.get(db, shut)).restricted  # type: ignore[union-attr]
        assert not (await queue.get(db, open_one)).restricted  # type: ignore[union-attr]
        actions = [e.action for sid in (shut, open_one)
                   for e in await events.for_submission(db, sid)]
    assert "restrict" not in actions and "unrestrict" not in actions


async def test_reclassifying_to_report_restricts_and_another_kind_never_lifts(
        service: Service, reviewer: Staff, client: aiohttp.ClientSession):
    base = service.base_url
    sid = await file_letter(service, PLAIN)
    await login(client, base, reviewer.name)
    token = await page_csrf(client, f"{base}/console/s/{sid}")
    for kind in ("report", "complaint"):
        status, _body, _loc = await post_form(client, f"{base}/console/s/{sid}/classify",
                                              {"csrf": token, "category": "1", "kind": kind})
        if kind == "report":
            assert status == 302
        else:  # the reviewer lost access with the restriction
            assert status == 403
    async with service.runtime.sessions() as db:
        sub = await queue.get(db, sid)
        [restrict] = [e for e in await events.for_submission(db, sid) if e.action == "restrict"]
    assert sub is not None and sub.kind == "report" and sub.restricted
    assert sub.restricted_by == "staff" and restrict.actor == reviewer.name
