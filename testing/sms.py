"""An SMS gateway stub: an aiohttp server on loopback that answers Aliyun's ``SendSms`` as the
provider does, records every request it receives, and can inject failures.

No SMS provider is reachable from here, so the notices' SMS channel (bot/sms.py) is tested
against this: it checks what the provider would (the signature over the parameters, with the
configured secret) and keeps what arrived for the test to read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from testing.loopback import HOST, free_port


def provider_signature(params: dict[str, str], secret: str) -> str:
    """The signature the provider expects (Aliyun RPC, signature version 1.0), written from
    its documentation apart from bot/sms.py so that the stub checks the client."""
    def enc(text: str) -> str:
        return urllib.parse.quote(text, safe="-_.~")

    query = "&".join(f"{enc(k)}={enc(params[k])}" for k in sorted(params))
    string_to_sign = "POST&%2F&" + enc(query)
    mac = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class SmsRequest:
    """One request the stub received, and whether its signature was right."""

    params: dict[str, str]
    signed: bool

    @property
    def template_param(self) -> dict[str, Any]:
        return json.loads(self.params.get("TemplateParam", "{}"))


@dataclass
class SmsStub:
    """Answers ``{"Code": "OK"}`` to a well-signed request; ``fail(n, status)`` makes the next
    ``n`` requests fail with that HTTP status (5xx: the provider's outage)."""

    secret: str = "sms-test-secret"
    port: int = field(default_factory=free_port)
    received: list[SmsRequest] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    attempts: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def fail(self, n: int, status: int = 503) -> None:
        self.failures.extend([status] * n)

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.failures:
            status = self.failures.pop(0)
            return web.json_response({"Code": "ServiceUnavailable", "Message": "stub"},
                                     status=status)
        params = {k: str(v) for k, v in (await request.post()).items()}
        given = params.pop("Signature", "")
        signed = given == provider_signature(params, self.secret)
        self.received.append(SmsRequest(params, signed))
        self._arrived.set()
        if not signed:
            return web.json_response({"Code": "SignatureDoesNotMatch", "Message": "bad"},
                                     status=400)
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": str(self.attempts),
                                  "RequestId": "stub"})

    async def wait(self, n: int, timeout: float = 20.0) -> list[SmsRequest]:
        """The first ``n`` requests received, waiting for them to arrive."""
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received[:n]

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
