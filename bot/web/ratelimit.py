"""Per-address rate limits on every public POST: a token bucket per client, kept in memory.

Each client address has one bucket per scope: ``submit`` (the feedback form, follow-ups, ratings)
and ``lookup`` (status lookups, stricter in effect because a six-digit query code must not be
guessable). A bucket holds ``N`` requests and refills evenly over an hour. An empty bucket answers
429 with a Chinese page that says how long to wait, and ``Retry-After``. Staff paths (/console,
/api) have their own login and are not counted here.

The client address is the TCP peer, unless that peer is one of ``web.trusted_proxies`` (IPs or
networks): then the right-most address in X-Forwarded-For that is not itself a trusted proxy. Only
trusted proxies may speak for a client; anyone else could put any address in that header.

State is per process and lost on restart, which is fine for abuse control (several instances
behind a balancer each count on their own, so the effective limit is N per instance).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp_jinja2
from aiohttp import web

from bot.web.keys import RUNTIME
from bot.web.middlewares import Handler

HOUR = 3600.0
EXEMPT_PREFIXES = ("/console", "/api/", "/healthz", "/metrics", "/static/")
MAX_KEYS = 50_000  # past this many tracked addresses, full buckets are forgotten

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class TokenBucket:
    """``capacity`` requests at once, refilled at ``capacity`` per ``period`` seconds."""

    capacity: int
    period: float = HOUR
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (tokens, at)

    @property
    def rate(self) -> float:
        return self.capacity / self.period

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._state.get(key, (float(self.capacity), now))
        return min(float(self.capacity), tokens + (now - at) * self.rate)

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._state[key] = (tokens - 1.0, now)
        if len(self._state) > MAX_KEYS:
            self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        full = [k for k in self._state if self._tokens(k, now) >= self.capacity]
        for key in full:
            del self._state[key]


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The address to count a request against (see the module docstring for proxies).

    Written by hand: aiohttp's own ``forwarded`` support trusts no one by default, and the
    aiohttp-remotes package would be a dependency for these ten lines.
    """
    peer = request.remote or "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


@dataclass
class Limiter:
    """The buckets of one web application, and the proxies it trusts."""

    submit: TokenBucket
    lookup: TokenBucket
    trusted: tuple[Network, ...] = ()

    def scope(self, path: str) -> TokenBucket:
        return self.lookup if path.rstrip("/") == "/status" else self.submit


LIMITER: web.AppKey[Limiter] = web.AppKey("rate_limiter")


def too_many(request: web.Request, wait_seconds: float) -> web.Response:
    """The 429 page: what happened, and how long to wait."""
    seconds = max(1, math.ceil(wait_seconds))
    minutes = math.ceil(seconds / 60)
    wait = f"{seconds} 秒" if seconds < 60 else f"{minutes} 分钟"
    text = (f"您的操作太频繁了。为了防止恶意提交，同一网络地址在一段时间内的提交次数有限制。"
            f"请在 {wait}后再试；已填写的内容可以用浏览器的“返回”找回。")
    resp = aiohttp_jinja2.render_template(
        "web/error.html", request,
        {"title": "操作太频繁", "text": text, "status": 429, "ref": None}, status=429)
    resp.headers["Retry-After"] = str(seconds)
    return resp


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method != "POST" or request.path.startswith(EXEMPT_PREFIXES):
        return await handler(request)
    limiter = request.app[LIMITER]
    wait = limiter.scope(request.path).take(client_address(request, limiter.trusted))
    if wait > 0:
        return too_many(request, wait)
    return await handler(request)


def install(app: web.Application) -> None:
    """Add the limiter and its middleware to an application that is not started yet."""
    web_settings = app[RUNTIME].settings.web
    app[LIMITER] = Limiter(
        submit=TokenBucket(web_settings.submits_per_hour),
        lookup=TokenBucket(web_settings.lookups_per_hour),
        trusted=parse_networks(web_settings.trusted_proxies),
    )
    app.middlewares.append(rate_limit)
