"""The public feedback form: GET shows it, POST stores the letter and shows the tracking number.

POST order of work: read the body within size limits (bot/web/uploads.py; 413 when over) → check
the form token (CSRF, idempotency) → honeypot → validate text and attachments → write accepted
attachments to the store → hand the raw payload to the form writer (bot/web/form_writer.py),
which stores it with a fresh tracking number in one transaction with the other letters waiting at
that moment, and wakes the intake worker → show the tracking number once it is committed.
The worker files the letter (classification, acknowledgement) moments later, in batches when many
come at once. A request costs a share of one committed insert whatever the pipeline costs, so a
rush of letters is answered at once and filed at the pipeline's pace, and nothing is lost if the
process dies in between. The number is true from the moment the page shows it; the status page
waits briefly for a letter that is still being filed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import escape

from bot.web import tokens, uploads
from bot.web.form_writer import WRITER, Entry
from bot.web.keys import RUNTIME
from bot.web.middlewares import same_origin
from bot.web.uploads import TooLarge
from bot.web.validate import FIELDS, FormInput, validate
from handlers import tracking

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
HONEYPOT = "website"


def _context(rt: Runtime, form: FormInput | None, token: str,
             notice: str | None = None) -> dict[str, Any]:
    return {
        "values": form.values if form else {},
        "errors": form.errors if form else {},
        "token": token,
        "notice": notice,
        "accept_days": rt.settings.intake.accept_days,
        "handle_days": rt.settings.intake.handle_days,
        "max_uploads": rt.settings.web.max_uploads,
        "max_upload_mb": f"{rt.settings.web.max_upload_bytes / (1024 * 1024):g}",
    }


def _render_form(request: web.Request, form: FormInput | None, status: int = 200,
                 notice: str | None = None) -> web.Response:
    rt = request.app[RUNTIME]
    context = _context(rt, form, tokens.issue(rt.secret), notice)
    return aiohttp_jinja2.render_template("web/form.html", request, context, status=status)


@dataclass
class FormPages:
    """The form's two pages, rendered once and filled in per visitor.

    ``pieces``: the form as a first visit shows it, cut where the token goes. ``done``: the page
    after a POST, per variant (with or without an address), with slots for the number, the query
    code and the address. Rendering each through Jinja was a third of a GET's or a POST's CPU
    under sustained load (``bench/web_form.py --sustained``); they depend on the settings only,
    which change with a restart."""

    pieces: list[str] = field(default_factory=list)
    done: dict[bool, str] = field(default_factory=dict)


FORM_PAGES: web.AppKey[FormPages] = web.AppKey("form_pages", FormPages)
_TOKEN_SLOT = "\x00token\x00"  # no template writes a NUL
_DONE_SLOTS = {"tracking_no": "\x00tn\x00", "query_code": "\x00qc\x00", "email": "\x00em\x00"}


def upload_limits(request: web.Request) -> uploads.Limits:
    w = request.app[RUNTIME].settings.web
    return uploads.Limits(text_bytes=w.max_body_bytes, file_bytes=w.max_upload_bytes,
                          files=w.max_uploads)


def too_large_page(request: web.Request, text: str) -> web.Response:
    context = {"title": "内容太大", "text": text, "status": 413, "ref": None}
    return aiohttp_jinja2.render_template("web/error.html", request, context, status=413)


def check_files(form: FormInput, files: list[uploads.Upload], max_files: int) -> None:
    """Attachment problems join the field errors; chosen files must be chosen again after any
    error, because a browser cannot refill a file input."""
    message = uploads.file_errors(files, max_files)
    if message:
        form.errors["attachments"] = message
    elif files and not form.ok:
        form.errors["attachments"] = "页面上有需要修改的地方，您选择的附件没有保存，请修改后重新选择附件。"


async def show_form(request: web.Request) -> web.Response:
    rt, blank = request.app[RUNTIME], request.app[FORM_PAGES]
    if not blank.pieces:
        page = aiohttp_jinja2.render_string("web/form.html", request,
                                            _context(rt, None, _TOKEN_SLOT))
        blank.pieces = page.split(_TOKEN_SLOT)
    return web.Response(text=tokens.issue(rt.secret).join(blank.pieces), content_type="text/html")


def _render_done(request: web.Request, tracking_no: str, email: str | None) -> web.Response:
    rt, cache = request.app[RUNTIME], request.app[FORM_PAGES].done
    page = cache.get(bool(email))
    if page is None:
        context = {**_DONE_SLOTS, "email": _DONE_SLOTS["email"] if email else None,
                   "accept_days": rt.settings.intake.accept_days,
                   "handle_days": rt.settings.intake.handle_days}
        page = cache[bool(email)] = aiohttp_jinja2.render_string("web/done.html", request, context)
    values = {"tracking_no": tracking_no, "email": email or "",
              "query_code": tracking.query_code_for(rt.secret, tracking_no)}
    for name, slot in _DONE_SLOTS.items():
        page = page.replace(slot, str(escape(values[name])))
    return web.Response(text=page, content_type="text/html")


async def submit(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if not same_origin(request):
        raise web.HTTPForbidden()
    try:
        body = await uploads.read_form(request, upload_limits(request))
    except TooLarge as exc:
        return too_large_page(request, exc.text)
    data = body.fields
    raw = {k: str(data.get(k, "")) for k in FIELDS}
    nonce = tokens.verify(rt.secret, str(data.get("token", "")))
    form = validate(raw)
    if nonce is None:
        notice = "页面已过期或无效。您填写的内容都还在，请再次点击“提交”。"
        if body.files:
            notice += "附件需要重新选择。"
        return _render_form(request, form, status=400, notice=notice)
    if data.get(HONEYPOT):
        return await _store_honeypot(request, nonce, form)
    check_files(form, body.files, rt.settings.web.max_uploads)
    if not form.ok:
        return _render_form(request, form, status=400)
    payload: dict[str, Any] = {"fields": form.values}
    if body.files:
        payload["attachments"] = await uploads.store_files(rt.blobs, body.files)
    # Committed when this returns. The same form sent twice gets the first one's number.
    tn = await request.app[WRITER].store(Entry(f"web:{nonce}", payload))
    if tn is None:  # the first use of this form filled the bots' field
        return aiohttp_jinja2.render_template("web/received.html", request, {})
    return _render_done(request, tn, form.values["email"] or None)


async def _store_honeypot(request: web.Request, nonce: str, form: FormInput) -> web.Response:
    """Bots fill the hidden field. Keep what they sent (nothing is dropped unseen), file nothing."""
    await request.app[WRITER].store(Entry(f"web:{nonce}", {"fields": form.values, "honeypot": True},
                                          discard_note="honeypot field filled"))
    log.info("web form: honeypot filled, not filed")
    return aiohttp_jinja2.render_template("web/received.html", request, {})
