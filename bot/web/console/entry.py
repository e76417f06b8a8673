"""Staff data entry (/console/new): a phone call or a letter, taken in as a web-form letter is.

Besides the web form's fields, staff record when the call or letter came in (收到时间: a letter
arrives days after it was posted, and the clocks run from its receipt; never in the future), the
postal address (on the print view of its notices) and scanned pages (images or PDF, checked and
stored as the web form's uploads are, ``bot/web/uploads.py``; the form is multipart, its CSRF
token read first, see ``csrf._first_part``).

The form's fields go to the form's intake writer (``bot/web/form_writer.py``) as a raw intake
row (channel ``phone`` or ``post``, the staff member as actor), stored with a fresh tracking
number and committed before the page answers; the intake worker then files it (classified,
acknowledged by e-mail if the citizen gave an address) moments later, as it files every other
input. The request never runs the pipeline itself. The page shows the tracking number and the
query code once, for the staff member to read out to the caller, who has no other way to get
the code. The form's signed nonce is the idempotency key: a double click stores one letter and
shows its number again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.web import tokens, uploads
from bot.web.console import auth
from bot.web.form import check_files, upload_limits
from bot.web.form_writer import WRITER, Entry
from bot.web.keys import RUNTIME
from bot.web.validate import FIELDS, clean_text, validate
from handlers import tracking
from handlers.text import one_line
from storage.clock import utcnow

CHANNELS = {"phone": "电话", "post": "信件"}
ADDRESS_MAX = 200
OLDEST_DAYS = 366  # a letter typed in later than this is a mistake in the date


def received_at(text: str, tz: ZoneInfo, now: datetime) -> tuple[datetime | None, str | None]:
    """The moment staff say the call or letter came in (``YYYY-MM-DDTHH:MM`` in ``tz``, as a
    datetime-local field sends it), or what is wrong with it; empty: now."""
    text = text.strip()
    if not text:
        return None, None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        return None, "收到时间格式不正确，请按“年-月-日 时:分”填写，例如 2026-03-01 09:30。"
    if local.tzinfo is not None:
        return None, "收到时间请填写本地时间，不要带时区。"
    moment = local.replace(tzinfo=tz).astimezone(UTC)
    if moment > now + timedelta(minutes=5):
        shown = now.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        return None, f"收到时间不能晚于现在（{shown}），请核对来信或来电的收到时间。"
    if moment < now - timedelta(days=OLDEST_DAYS):
        return None, "收到时间早于一年前，请核对年份。"
    return moment, None


async def _render(request: web.Request, values: dict, errors: dict, status: int = 200,
                  notice: str | None = None) -> web.Response:
    rt = request.app[RUNTIME]
    context = {"values": values, "errors": errors, "channels": CHANNELS,
               "nonce": tokens.issue(rt.secret), "notice": notice,
               "max_uploads": rt.settings.web.max_uploads,
               "now": utcnow().astimezone(ZoneInfo(rt.settings.digest.timezone))
               .strftime("%Y-%m-%dT%H:%M")}
    return await auth.render(request, "console/entry.html", context, status=status)


async def show(request: web.Request) -> web.Response:
    return await _render(request, {"channel": request.query.get("channel", "phone")}, {})


async def submit(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    try:
        body = await uploads.read_form(request, upload_limits(request))
    except uploads.TooLarge as exc:
        return await _render(request, {"channel": "post"}, {}, 413, exc.text)
    data = body.fields
    form = validate({k: str(data.get(k, "")) for k in FIELDS})
    channel = str(data.get("channel", ""))
    address = one_line(clean_text(str(data.get("address", ""))), ADDRESS_MAX + 1)
    received_text = str(data.get("received", ""))[:40]
    values = {**form.values, "channel": channel, "address": address, "received": received_text}
    if channel not in CHANNELS:
        form.errors["channel"] = "请选择来信方式：电话或信件。"
    moment, problem = received_at(received_text, ZoneInfo(rt.settings.digest.timezone), utcnow())
    if problem:
        form.errors["received"] = problem
    if len(address) > ADDRESS_MAX:
        form.errors["address"] = f"通信地址请不要超过 {ADDRESS_MAX} 个字。"
    nonce = tokens.verify(rt.secret, str(data.get("nonce", "")))
    if nonce is None:
        return await _render(request, values, form.errors, 400, "表单已过期，请再次提交。")
    check_files(form, body.files, rt.settings.web.max_uploads)
    if not form.ok:
        return await _render(request, values, form.errors, 400)
    fields = {**form.values, "address": address}
    payload: dict[str, Any] = {"fields": fields, "actor": user.name}
    if moment is not None:
        payload["received_at"] = moment.isoformat()
    if body.files:
        payload["attachments"] = await uploads.store_files(rt.blobs, body.files)
    # Committed when this returns; the same form sent twice gets the first one's number.
    tn = await request.app[WRITER].store(Entry(f"console:{nonce}", payload, channel=channel))
    assert tn is not None  # only a honeypot row has none
    context = {"tracking_no": tn, "query_code": tracking.query_code_for(rt.secret, tn),
               "channel": CHANNELS[channel], "email": form.values.get("email") or None}
    return await auth.render(request, "console/entry_done.html", context)


def setup(app: web.Application) -> None:
    app.router.add_get("/console/new", show)
    app.router.add_post("/console/new", submit)
