"""The SMS gateway: one notice's text message per outbox row of kind ``sms``, over HTTP.

The request is Aliyun SMS's ``SendSms`` (API version 2017-05-25) in its RPC form: the
parameters form-encoded in a POST, signed with HMAC-SHA1 over the sorted, percent-encoded
parameters (Aliyun's "signature version 1.0"), the answer JSON with ``Code`` "OK". Tencent
Cloud and most domestic gateways take the same fields (key id, signature name, template code,
template parameters); a gateway that differs is put behind a small relay.

Written by hand rather than with the provider's SDK (alibabacloud-dysmsapi20170525): the SDK
brings its own HTTP stack and runtime (Tea, darabonba) for what is one signed POST, while the
service already speaks HTTP through aiohttp; the signature is a dozen documented lines.

What the outbox does with the answer (bot/workers/outbox.py): "OK" marks the row sent; a 5xx,
a connection error, a timeout, the provider's rate limit (``isv.BUSINESS_LIMIT_CONTROL``,
``Throttling``) or our own credentials refused is retried with the outbox's backoff (a
configuration fixed within the retry window still delivers); a number the provider refuses
fails the row for good, shown on /console/outbox.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC
from urllib.parse import quote

import aiohttp

from bot.config import SmsSettings
from handlers.errors import SenderFault
from storage.clock import utcnow
from storage.models import Outbox

# Answers that say "not now" or "our configuration", not "this number is wrong": retried.
TEMPORARY_CODES = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling", "isv.DAY_LIMIT_CONTROL",
                   "SignatureDoesNotMatch", "InvalidAccessKeyId", "ServiceUnavailable",
                   "InternalError", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL")


class SmsRefused(SenderFault):
    """The gateway refused the message for good (e.g. an invalid number)."""


class SmsUnavailable(Exception):
    """The gateway could not take the message now: retried."""


def _pct(value: str) -> str:
    """Aliyun's percent-encoding (RFC 3986 unreserved characters kept, space as %20)."""
    return quote(value, safe="~")


def sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """The RPC signature of ``params`` (signature version 1.0, HMAC-SHA1)."""
    canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_pct('/')}&{_pct(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def request_params(s: SmsSettings, row: Outbox) -> dict[str, str]:
    """The signed parameters of one row's ``SendSms`` request."""
    body = json.loads(row.message)
    params = {
        "AccessKeyId": s.key_id, "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex,
        "SignatureVersion": "1.0", "Version": "2017-05-25",
        "Timestamp": utcnow().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "PhoneNumbers": body["phone"], "SignName": s.sign_name, "TemplateCode": s.template_code,
        "TemplateParam": json.dumps(body["params"], ensure_ascii=False, separators=(",", ":")),
        "OutId": row.message_id[:64],
    }
    params["Signature"] = sign(params, s.secret.get_secret_value())
    return params


async def _send_one(http: aiohttp.ClientSession, s: SmsSettings, row: Outbox) -> None:
    try:
        async with http.post(s.url, data=request_params(s, row)) as resp:
            text = await resp.text(errors="replace")
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SmsUnavailable(f"SMS gateway unreachable: {exc.__class__.__name__}") from exc
    if status >= 500:
        raise SmsUnavailable(f"SMS gateway answered HTTP {status}")
    try:
        answer = json.loads(text)
        code = str(answer.get("Code", ""))
        message = str(answer.get("Message", ""))[:300]
    except (ValueError, AttributeError):
        raise SmsUnavailable(f"SMS gateway answered HTTP {status} without JSON") from None
    if code == "OK":
        return
    if code.startswith(TEMPORARY_CODES) or not code:
        raise SmsUnavailable(f"SMS gateway: {code or status} {message}")
    raise SmsRefused(f"SMS gateway refused: {code} {message}")


async def send(s: SmsSettings, rows: list[Outbox],
               mark_sent: Callable[[int], Awaitable[None]]) -> dict[int, Exception | None]:
    """Send each row's text; per row None (marked sent at once through ``mark_sent``, an async
    callable taking the row id) or the exception. Unconfigured: each row fails for good."""
    results: dict[int, Exception | None] = {}
    if not s.enabled:
        return {r.id: SmsRefused("SMS gateway not configured ([sms] url, key_id, template_code)")
                for r in rows}
    timeout = aiohttp.ClientTimeout(total=s.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for row in rows:
            try:
                await _send_one(http, s, row)
            except (SmsRefused, SmsUnavailable) as exc:
                results[row.id] = exc
                continue
            except (ValueError, KeyError) as exc:  # a row we did not write: never retried
                results[row.id] = SmsRefused(f"unreadable SMS row: {exc.__class__.__name__}")
                continue
            await mark_sent(row.id)
            results[row.id] = None
    return results

