"""The citizen's status page: look up a submission, add to it, rate its handling; the privacy notice.

Flow: GET /status shows the lookup form. POST /status takes the tracking number and the private
query code (never in a URL: the form posts, and success redirects to a plain /status). The code
is checked against its keyed hash in constant time; a wrong pair, whichever half is wrong, gets
the same message. Success sets a short-lived signed cookie (``fb_status``: tracking number, expiry,
HMAC; HttpOnly, SameSite=Strict, Path=/status) that lets the citizen see the page, add a follow-up
and rate the handling for ACCESS_SECONDS; "退出" clears it.

Follow-ups are stored as raw intake rows (with the case's tracking number) and filed by the intake
worker like every other input; the page lists them at once, filed or not.

Ratings: one rating per submission, changeable while it is resolved (the latest counts; the history
keeps every rating given, so a changed rating is visible to staff).

Lookups are rate-limited per address (bot/web/ratelimit.py) and per tracking number, so a known
tracking number cannot be brute-forced from many addresses.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import hmac
import re
import time
import unicodedata
from datetime import datetime
from email.parser import BytesParser
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from inscriptis import get_text

from bot.web import ratelimit, tokens
from bot.web.keys import RUNTIME
from bot.web.middlewares import same_origin
from bot.web.params import ascii_int
from bot.web.validate import body_error, clean_text
from handlers import casework, categories, tracking
from storage import notices, raw_intake, submissions, workflow
from storage import status as store
from storage.clock import utcnow
from storage.models import Submission
from storage.status import RATINGS

COOKIE = "fb_status"
ACCESS_SECONDS = 30 * 60
COMMENT_MAX = 1000
REASON_MAX = 2000
FILING_WAIT = 3.0  # seconds a lookup waits for a letter the intake worker is still filing
STILL_FILING = "您的来信已经收到，正在登记，请过一两分钟再查询。"
IN_STAFF_HANDS = ("您的来信已经收到并完整保存。自动登记时遇到技术问题，已转工作人员人工处理，"
                  "登记后即可查询办理进度，请稍后再来查询。")
GENERIC_WRONG = "受理编号或查询码不正确。请核对确认邮件或提交成功页面上的受理编号和 6 位查询码后再试。"
OTHER_CATEGORIES = {"other": "其他问题", "spam": "其他问题"}
FLASH = {
    "followup": "已收到您的补充内容，已归入同一件来信，工作人员会一并处理。",
    "review": "已收到您的申请，告知见下方；我们会在期限内书面答复您。",
    "rating": "谢谢您的评价。",
}


# -- access cookie -------------------------------------------------------------------------

def _access_sig(secret: bytes, tn: str, expires: int) -> str:
    return hmac.new(secret, f"status|{tn}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def issue_access(secret: bytes, tn: str, now: float | None = None) -> str:
    expires = int(now or time.time()) + ACCESS_SECONDS
    return f"{tn}.{expires}.{_access_sig(secret, tn, expires)}"


def read_access(secret: bytes, value: str | None, now: float | None = None) -> str | None:
    """The tracking number a valid, unexpired access cookie grants, else None."""
    parts = (value or "").split(".")
    expires = ascii_int(parts[1]) if len(parts) == 3 and len(value or "") <= 120 else None
    if expires is None:
        return None
    tn, sig = parts[0], parts[2]
    if not hmac.compare_digest(sig, _access_sig(secret, tn, expires)):
        return None
    return tn if (now or time.time()) < expires else None


def _set_access(request: web.Request, resp: web.StreamResponse, tn: str) -> None:
    rt = request.app[RUNTIME]
    resp.set_cookie(COOKIE, issue_access(rt.secret, tn), max_age=ACCESS_SECONDS, path="/status",
                    httponly=True, samesite="Strict",
                    secure=rt.settings.web.public_url.startswith("https://"))


def _see_other(location: str) -> web.Response:
    """303 after a POST, returned (not raised) so that cookies and security headers apply."""
    return web.Response(status=303, headers={"Location": location})


# -- what the page shows -------------------------------------------------------------------

def category_label(category: str | None, taxonomy_version: str | None = None) -> str:
    """The category's title under the report the letter was classified by."""
    if category in OTHER_CATEGORIES:
        return OTHER_CATEGORIES[category]
    return categories.titles(taxonomy_version).get(category or "", "待分类")


def reply_text(message: bytes) -> str:
    """The readable text of a reply as it was mailed: its plain part, else its HTML as text."""
    msg = BytesParser(policy=email.policy.default).parsebytes(message)
    part = msg.get_body(("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    return (get_text(content) if part.get_content_subtype() == "html" else content).strip()


def _day(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y年%m月%d日")


def _clock_lines(sub: Submission, s: Any, tz: ZoneInfo) -> list[tuple[str, str]]:
    """The case's clocks as the citizen reads them: (what, by when), the ones that apply."""
    c = workflow.clocks(sub, s.intake.accept_days, s.intake.handle_days, tz, utcnow())
    lines = [("受理期限", f"收到后 {s.intake.accept_days} 日内决定是否受理（{c.accept_due}前）")]
    if c.handle_due is not None:
        extended = f"，已延期 {sub.extended_days} 日" if sub.extended_days else ""
        lines.append(("办结期限", f"受理后 {s.intake.handle_days} 日内（{c.handle_due}前"
                                  f"{extended}）"))
    elif sub.status == workflow.NEW:
        lines.append(("办结期限", f"受理后 {s.intake.handle_days} 日内办结"))
    if c.forward_due is not None:
        lines.append(("承办单位办理期限", f"{c.forward_due}前"))
    for label, day in (("可申请复查至", c.review_request_by), ("复查答复期限", c.review_due),
                       ("可申请复核至", c.recheck_request_by), ("复核答复期限", c.recheck_due)):
        if day is not None and (label.startswith("可") or sub.status in (
                workflow.REVIEW, workflow.RECHECK)):
            lines.append((label, f"{day}前"))
    return lines


def _review_offer(sub: Submission, s: Any, tz: ZoneInfo) -> tuple[str, str] | None:
    """(action, what it is called) the citizen may ask for now: 复查 after the answer, 复核
    after the 复查's, each within its window; None otherwise."""
    c = workflow.clocks(sub, s.intake.accept_days, s.intake.handle_days, tz, utcnow())
    today = workflow.day_of(utcnow(), tz)
    if c.review_request_by is not None and today <= c.review_request_by:
        return "request_review", "复查"
    if c.recheck_request_by is not None and today <= c.recheck_request_by:
        return "request_recheck", "复核"
    return None


async def _view_context(request: web.Request, sub: Submission) -> dict[str, Any]:
    rt = request.app[RUNTIME]
    s = rt.settings
    tz = ZoneInfo(s.digest.timezone)
    async with rt.sessions() as session:
        replies = await store.replies(session, sub.id)
        followups = await store.followups(session, sub)
        given = await notices.for_submission(session, sub.id)
        carrier = await store.carrier(session, sub)
    stage, stage_text = workflow.CITIZEN_STAGES.get(sub.status,
                                                    workflow.CITIZEN_STAGES[workflow.NEW])
    offer = _review_offer(sub, s, tz)
    return {
        "tracking_no": sub.tracking_no,
        "received": sub.received_at.astimezone(tz).strftime("%Y年%m月%d日 %H:%M"),
        "category": category_label(sub.category, sub.taxonomy_version),
        "stage": stage,
        "stage_text": stage_text,
        "status": sub.status,
        "forwarded_to": sub.forwarded_to if sub.status == workflow.FORWARDED else None,
        "clocks": _clock_lines(sub, s, tz),
        # Every notice, in the order given: a refusal's reason is its notice, shown here.
        "notices": [{"n": n, "title": x.title, "at": _day(x.created_at, tz), "text": x.text}
                    for n, x in enumerate(given, 1)],
        "replies": [{"at": _day(r.at, tz), "text": reply_text(r.message)} for r in replies],
        "followups": [{"at": _day(f.received_at, tz), "text": f.text} for f in followups],
        # 并单: the case that carries this one on, as far as this citizen may know it: its
        # number, where it stands and its deadlines; never its text, replies or notices.
        "carrier": None if carrier is None else {
            "tracking_no": carrier.tracking_no,
            "stage": workflow.CITIZEN_STAGES.get(carrier.status,
                                                 workflow.CITIZEN_STAGES[workflow.NEW])[0],
            "clocks": _clock_lines(carrier, s, tz),
        },
        "review": offer,
        "can_rate": sub.status == workflow.RESOLVED,
        "rating": sub.satisfaction,
        "satisfaction": sub.satisfaction,
        "rating_comment": sub.rating_comment or "",
        "ratings": RATINGS,
        "token": tokens.issue(rt.secret),
        "flash": FLASH.get(request.query.get("done", "")),
        "errors": {},
        "values": {},
    }


async def _render_view(request: web.Request, sub: Submission, status: int = 200,
                       errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None) -> web.Response:
    context = await _view_context(request, sub)
    context.update(errors=errors or {}, values=values or {})
    if errors:
        context["flash"] = None
    return aiohttp_jinja2.render_template("web/status_view.html", request, context,
                                          status=status)


def _render_lookup(request: web.Request, status: int = 200, error: str | None = None,
                   tracking_no: str = "") -> web.Response:
    rt = request.app[RUNTIME]
    context = {"token": tokens.issue(rt.secret), "error": error, "tracking_no": tracking_no}
    return aiohttp_jinja2.render_template("web/status.html", request, context, status=status)


async def _granted(request: web.Request) -> Submission | None:
    rt = request.app[RUNTIME]
    tn = read_access(rt.secret, request.cookies.get(COOKIE))
    if tn is None:
        return None
    async with rt.sessions() as session:
        return await submissions.by_tracking_no(session, tn)


async def _filed(request: web.Request, tn: str) -> tuple[Submission | None, bool]:
    """The submission with this number, and whether its letter is still waiting to be filed.

    The form answers as soon as the letter is stored; the intake worker files it moments later.
    A citizen who looks it up at once waits a little for that (normally milliseconds) instead of
    being told the number is wrong."""
    rt = request.app[RUNTIME]
    deadline = time.monotonic() + FILING_WAIT
    while True:
        async with rt.sessions() as session:
            # In this order: a letter filed between the two reads is then found, not missed.
            filing = await raw_intake.tracking_no_pending(session, tn)
            sub = await submissions.by_tracking_no(session, tn)
        filing = filing and sub is None
        if not filing or time.monotonic() >= deadline:
            return sub, filing
        rt.intake_wakeup.set()
        await asyncio.sleep(0.05)


# -- views ---------------------------------------------------------------------------------

async def show(request: web.Request) -> web.Response:
    sub = await _granted(request)
    if sub is None:
        resp = _render_lookup(request)
        if COOKIE in request.cookies:
            resp.del_cookie(COOKIE, path="/status")
        return resp
    resp = await _render_view(request, sub)
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def _fields(request: web.Request) -> dict[str, str]:
    """The posted text fields (1 MB limit of ``client_max_size``); a broken body is a 400."""
    try:
        data = await request.post()
    except (ValueError, LookupError, AssertionError) as exc:
        raise web.HTTPBadRequest() from exc
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def _check_post(request: web.Request) -> dict[str, str]:
    rt = request.app[RUNTIME]
    if not same_origin(request):
        raise web.HTTPForbidden()
    fields = await _fields(request)
    if tokens.verify(rt.secret, fields.get("token")) is None:
        raise web.HTTPBadRequest()
    return fields


def normalize_tracking_no(given: str, prefix: str) -> str:
    """The canonical form of a typed tracking number: any case, full-width, spaces or no dashes."""
    compact = re.sub(r"[\s\-_—–]", "", unicodedata.normalize("NFKC", given)).upper()
    if prefix and compact.startswith(prefix):
        compact = compact[len(prefix):]
    if len(compact) == 8:
        return f"{prefix}-{compact[:4]}-{compact[4:]}" if prefix else f"{compact[:4]}-{compact[4:]}"
    return tracking.find_tracking_no(given, prefix) or compact


async def lookup(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    if not same_origin(request):
        raise web.HTTPForbidden()
    data = await _fields(request)
    given_tn = data.get("tracking_no", "").strip()[:64]
    code = "".join(data.get("query_code", "").split())[:32]
    if tokens.verify(rt.secret, data.get("token")) is None:
        return _render_lookup(request, 400, "页面已过期，请重新输入并点击“查询”。", given_tn)
    tn = normalize_tracking_no(given_tn, rt.settings.intake.tracking_prefix)
    wait = request.app[ratelimit.LIMITER].lookup.take(f"tn:{tn}")
    if wait > 0:
        return ratelimit.too_many(request, wait)
    sub, filing = await _filed(request, tn)
    stored = sub.query_code_hash if sub is not None else None
    # Always compare, even for an unknown number, so timing does not tell which half was wrong.
    if not tracking.check_query_code(rt.secret, tn, code, stored) or sub is None:
        if hmac.compare_digest(tracking.query_code_for(rt.secret, tn), code):
            if filing:
                return _render_lookup(request, 200, STILL_FILING, given_tn)
            async with rt.sessions() as session:  # stored but not filed: never "wrong number"
                if await raw_intake.tracking_no_quarantined(session, tn):
                    return _render_lookup(request, 200, IN_STAFF_HANDS, given_tn)
        return _render_lookup(request, 400, GENERIC_WRONG, given_tn)
    resp = _see_other("/status")
    _set_access(request, resp, sub.tracking_no)
    return resp


async def _post_with_access(request: web.Request
                            ) -> tuple[dict[str, str], Submission | web.Response]:
    """The posted fields and the submission this browser may act on, or the page that asks for
    the tracking number again when its access has run out."""
    fields = await _check_post(request)
    sub = await _granted(request)
    if sub is None:
        return fields, _render_lookup(request, 403, "查询已超时，请重新输入受理编号和查询码。")
    return fields, sub


async def followup(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    fields, sub = await _post_with_access(request)
    if isinstance(sub, web.Response):
        return sub
    text = clean_text(fields.get("text", ""))
    message = body_error(text)
    if message:
        return await _render_view(request, sub, 400, {"text": message}, {"text": text})
    nonce = tokens.verify(rt.secret, fields.get("token"))  # checked by _check_post
    async with rt.sessions.begin() as session:
        current = await submissions.by_tracking_no(session, sub.tracking_no)
        assert current is not None
        earlier = await store.followups(session, current)
        if not earlier or earlier[-1].text != text:  # a double click files it once
            await store.add_followup(session, current, text, f"status:{nonce}")
    rt.intake_wakeup.set()  # stored: the intake worker files it as the case's follow-up
    return _see_other("/status?done=followup")


async def rate(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    fields, sub = await _post_with_access(request)
    if isinstance(sub, web.Response):
        return sub
    choice = fields.get("satisfaction", "")
    comment = clean_text(fields.get("comment", ""))
    errors = {}
    if sub.status != workflow.RESOLVED:
        errors["satisfaction"] = "办结以后才可以评价。"
    elif choice not in RATINGS:
        errors["satisfaction"] = "请选择“满意”“基本满意”或“不满意”中的一项。"
    if len(comment) > COMMENT_MAX:
        errors["comment"] = f"评价意见请不要超过 {COMMENT_MAX} 字（现在 {len(comment)} 字）。"
    if errors:
        return await _render_view(request, sub, 400, errors, {"comment": comment})
    async with rt.sessions.begin() as session:
        current = await submissions.by_tracking_no(session, sub.tracking_no)
        assert current is not None
        await store.rate(session, current, choice, comment)
    return _see_other("/status?done=rating")


async def review(request: web.Request) -> web.StreamResponse:
    """The citizen asks for 复查 (or, after its answer, 复核) with a short reason, within the
    window; the same action staff can take on their behalf (``handlers.casework``)."""
    rt = request.app[RUNTIME]
    fields, sub = await _post_with_access(request)
    if isinstance(sub, web.Response):
        return sub
    reason = clean_text(fields.get("reason", ""))
    offer = _review_offer(sub, rt.settings, ZoneInfo(rt.settings.digest.timezone))
    error = None
    if offer is None or fields.get("action") != offer[0]:
        error = "现在不能申请复查或复核：申请期限已过，或此件还没有可以申请复查、复核的答复。"
    elif not 5 <= len(reason) <= REASON_MAX:
        error = f"请写明申请{offer[1]}的理由，5 至 {REASON_MAX} 字（现在 {len(reason)} 字）。"
    if error is None and offer is not None:  # no offer has set an error
        async with rt.sessions.begin() as session:
            current = await submissions.by_tracking_no(session, sub.tracking_no)
            assert current is not None
            try:
                await casework.apply(rt.context(session), current,
                                     casework.Request(action=str(offer[0]), reason=reason),
                                     actor="citizen", units=rt.settings.casework.units)
            except casework.WorkflowError as exc:
                error = str(exc)
    if error is not None:
        return await _render_view(request, sub, 400, {"reason": error}, {"reason": reason})
    rt.outbox_wakeup.set()
    return _see_other("/status?done=review")


async def leave(request: web.Request) -> web.StreamResponse:
    await _check_post(request)
    resp = _see_other("/status")
    resp.del_cookie(COOKIE, path="/status")
    return resp


async def privacy(request: web.Request) -> web.Response:
    s = request.app[RUNTIME].settings
    days = s.intake.retention_days
    context = {
        "retention_days": days,
        "retention_years": f"{days / 365:.0f}" if days % 365 == 0 else None,
        "submits_per_hour": s.web.submits_per_hour,
    }
    return aiohttp_jinja2.render_template("web/privacy.html", request, context)


def setup(app: web.Application) -> None:
    ratelimit.install(app)
    app.router.add_get("/status", show)
    app.router.add_post("/status", lookup)
    app.router.add_post("/status/followup", followup)
    app.router.add_post("/status/rating", rate)
    app.router.add_post("/status/review", review)
    app.router.add_post("/status/logout", leave)
    app.router.add_get("/privacy", privacy)
