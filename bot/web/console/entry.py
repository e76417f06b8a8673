"""Staff data entry (/console/new): a phone call or a letter, taken in as a web-form letter is.

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

from aiohttp import web

from bot.web import tokens
from bot.web.console import auth
from bot.web.form_writer import WRITER, Entry
from bot.web.keys import RUNTIME
from bot.web.validate import FIELDS, validate
from handlers import tracking

CHANNELS = {"phone": "电话", "post": "信件"}


async def _render(request: web.Request, values: dict, errors: dict, status: int = 200,
                  notice: str | None = None) -> web.Response:
    rt = request.app[RUNTIME]
    context = {"values": values, "errors": errors, "channels": CHANNELS,
               "nonce": tokens.issue(rt.secret), "notice": notice}
    return await auth.render(request, "console/entry.html", context, status=status)


async def show(request: web.Request) -> web.Response:
    return await _render(request, {"channel": request.query.get("channel", "phone")}, {})


async def submit(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    data = await request.post()
    form = validate({k: str(data.get(k, "")) for k in FIELDS})
    channel = str(data.get("channel", ""))
    values = {**form.values, "channel": channel}
    if channel not in CHANNELS:
        form.errors["channel"] = "请选择来信方式：电话或信件。"
    nonce = tokens.verify(rt.secret, str(data.get("nonce", "")))
    if nonce is None:
        return await _render(request, values, form.errors, 400, "表单已过期，请再次提交。")
    if not form.ok:
        return await _render(request, values, form.errors, 400)
    payload = {"fields": form.values, "actor": user.name}
    # Committed when this returns; the same form sent twice gets the first one's number.
    tn = await request.app[WRITER].store(Entry(f"console:{nonce}", payload, channel=channel))
    assert tn is not None  # only a honeypot row has none
    context = {"tracking_no": tn, "query_code": tracking.query_code_for(rt.secret, tn),
               "channel": CHANNELS[channel], "email": form.values.get("email") or None}
    return await auth.render(request, "console/entry_done.html", context)


def setup(app: web.Application) -> None:
    app.router.add_get("/console/new", show)
    app.router.add_post("/console/new", submit)
