"""Who may see what, and the headers that make downloads safe.

Reports of misconduct (举报) can name people and put the citizen at risk; only supervisors and
admins see the content of a restricted letter (``Submission.restricted``: set by the writer, by
the recall-tuned decision of ``handlers.classify.restrict``, or by staff). Files that citizens sent are served as downloads with
``nosniff`` so that a browser never runs an "image" that is really HTML or script.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from aiohttp import web

from storage.models import Submission, User

REPORT_ROLES = ("supervisor", "admin")
# Raster images only: SVG can carry script.
PREVIEW_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def sees_reports(user: User) -> bool:
    return user.role in REPORT_ROLES


def confidential(sub: Submission) -> bool:
    """True for a letter whose content only supervisors and admins read (and whose every view by
    them is audited); :func:`restricted` asks this, as does each audit of a view."""
    return bool(sub.restricted)


def restricted(sub: Submission, user: User) -> bool:
    """True when ``user`` may know this submission exists but not read it."""
    return confidential(sub) and not sees_reports(user)


class _Linked(Protocol):
    @property
    def restricted(self) -> bool: ...


L = TypeVar("L", bound=_Linked)


def visible_links(sub: Submission, user: User, links: Sequence[L]) -> list[L]:
    """The links (并单, ``storage.repeats``) of ``sub`` that ``user`` may see. A link to or from
    a 举报 says who wrote it or what it is about: a viewer who may not read 举报 sees none of
    a 举报's links, and no link to one; not even how many there are."""
    if sees_reports(user):
        return list(links)
    if confidential(sub):
        return []
    return [link for link in links if not link.restricted]


def client_ip(request: web.Request, trusted_proxies: list[str]) -> str:
    """The caller's address; X-Forwarded-For is believed only from a configured proxy."""
    remote = request.remote or "?"
    if remote in trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            try:
                return str(ipaddress.ip_address(hops[-1]))
            except ValueError:
                return remote
    return remote


_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\/]')


def download_headers(filename: str, content_type: str, *, inline: bool = False) -> dict[str, str]:
    """Content-Disposition (RFC 6266, UTF-8 name per RFC 5987) plus nosniff and a sandbox CSP."""
    from urllib.parse import quote

    name = _UNSAFE_NAME.sub("_", filename).strip() or "attachment"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    disposition = "inline" if inline else "attachment"
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(name)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }
