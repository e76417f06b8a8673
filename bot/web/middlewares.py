"""Middlewares: security headers on every answer, and kind error pages instead of crashes.

No request may end in a bare 500. Errors of the request (too large, not found, wrong method) get a
Chinese page with the right status; errors of ours are logged with a reference and shown as a
503 page asking to try again later (with Retry-After), because the citizen's letter matters more
than our stack trace.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.web.params import BadParam

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

MESSAGES = {
    400: ("请求有误", "提交的内容无法识别，请返回上一页重新填写。"),
    403: ("无法提交", "请从本网站的页面提交，如问题持续，请刷新页面后再试。"),
    404: ("页面不存在", "您要找的页面不存在。请检查网址，或返回首页。"),
    405: ("请求方式不正确", "请通过页面上的按钮操作。"),
    413: ("内容太大", "提交的内容超过了大小限制（1 MB）。请删减文字后再提交。"),
    429: ("操作太频繁", "您提交得太快了，请稍后再试。"),
    503: ("系统繁忙", "系统暂时繁忙，这次提交没有成功保存。请稍等一分钟后再试，您填写的内容可用浏览器“返回”找回。"),
}


def error_page(request: web.Request, status: int, ref: str | None = None,
               headers: dict[str, str] | None = None, text: str | None = None) -> web.Response:
    title, default_text = MESSAGES.get(status, MESSAGES[400])
    text = text or default_text
    resp = aiohttp_jinja2.render_template(
        "web/error.html", request, {"title": title, "text": text, "status": status, "ref": ref},
        status=status,
    )
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    for k, v in SECURITY_HEADERS.items():
        resp.headers.setdefault(k, v)
    return resp


def same_origin(request: web.Request) -> bool:
    """A browser's POST from another site carries that site's Origin; refuse it (CSRF).

    "null" is refused too: browsers send it from sandboxed frames, data: and file: pages, and
    after cross-site redirects (RFC 6454 §7.3) — never from our own pages, and an attacker
    can produce it at will. No Origin at all (older browsers, non-browser clients) is let
    through to the form token and CSRF checks."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    if origin == "null":
        return False
    return origin.split("://", 1)[-1].rstrip("/") == request.host


def _wants_html(request: web.Request) -> bool:
    return not request.path.startswith(("/api/", "/healthz", "/metrics"))


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if any("\x00" in k or "\x00" in v for k, v in request.query.items()):
            # No page has a use for a NUL, and PostgreSQL refuses it in any text parameter.
            raise BadParam("网址中的参数含有无效字符（空字符），请删除后重试。")
        return await handler(request)
    except BadParam as exc:  # says which parameter to fix
        if not _wants_html(request):
            return web.json_response({"error": exc.message}, status=400)
        return error_page(request, 400, text=exc.message)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_html(request):
            raise
        keep = {k: v for k, v in exc.headers.items() if k in ("Retry-After", "Allow")}
        return error_page(request, exc.status, headers=keep)
    except (UnicodeError, HttpProcessingError):
        # A body that is not valid UTF-8 (aiohttp decodes form fields strictly), or a multipart
        # part whose headers aiohttp's parser refuses (NUL, bad framing): the sender's fault,
        # so a 400 and not our error.
        log.info("request %s %s: undecodable body", request.method, request.path)
        return error_page(request, 400)
    except Exception:
        ref = secrets.token_hex(4)
        log.error("request %s %s failed (ref %s)", request.method, request.path, ref,
                  exc_info=True)
        return error_page(request, 503, ref=ref, headers={"Retry-After": "60"})
