"""Staff data entry (/console/new): a phone call or a letter recorded through the same pipeline.

The form's fields are stored as a raw intake row exactly like a web-form letter (channel
``phone`` or ``post``, the staff member as actor), then the pipeline runs on it at once: it is
classified, filed with a tracking number and, if the citizen gave an e-mail address,
acknowledged. The form's signed nonce is the idempotency key: a double click files one letter.
"""

from __future__ import annotations

from aiohttp import web

from bot.web import tokens
from bot.web.console import auth
from bot.web.keys import RUNTIME
from bot.web.validate import FIELDS, validate
from bot.workers.intake import process_raw
from storage import raw_intake

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
    source_key = f"console:{nonce}"
    async with rt.sessions.begin() as db:
        raw_id = await raw_intake.add(db, channel=channel, source_key=source_key,
                                      payload={"fields": form.values, "actor": user.name})
    if raw_id is None:  # the same form sent twice
        async with rt.sessions() as db:
            row = await raw_intake.by_source_key(db, source_key)
        raw_id = row.id if row else None
    outcome = await process_raw(rt, raw_id) if raw_id is not None else None
    if outcome is None or outcome.submission_id is None:
        rt.intake_wakeup.set()
        await auth.flash(request, "已保存，系统稍后会自动登记（如长时间未出现请联系管理员）。")
        raise web.HTTPFound("/console")
    done = f"已登记，编号 {outcome.tracking_no}。" if outcome.tracking_no else "已登记。"
    await auth.flash(request, done)
    raise web.HTTPFound(f"/console/s/{outcome.submission_id}")


def setup(app: web.Application) -> None:
    app.router.add_get("/console/new", show)
    app.router.add_post("/console/new", submit)
