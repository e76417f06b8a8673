"""The two kinds of error, as in Zulip's email gateway: the sender's fault, and ours.

A letter or an address that cannot be used as it is (a relay refusing the citizen's address, an
address that needs SMTPUTF8 from a relay without it) is the sender's fault: nothing is wrong with
the service, so it is logged at info, said kindly where a person sees it, and not retried as if
it were a bug. Every other exception is ours: logged at error, with the traceback, but with the
personal data an exception's message may quote taken out first (SECURITY.md: logs carry ids, not
addresses). :func:`report` is the one place that tells them apart; the worker runner
(``bot/workers/runner.py``) and the workers' per-item error paths use it.

Redaction reuses what the project has: :func:`without_addresses` (every address, as stored or as
sent in IDNA) and the digest's :func:`handlers.digest.mask.mask_digits` (phone and ID-card
numbers, WeChat/QQ accounts, house numbers), both regular expressions, cheap on an error path.
Names are not looked for (that needs jieba's dictionary, seconds to load in the middle of an
outage); our exceptions carry none: SQL errors are raised without their bound values
(``storage.db.make_engine``'s ``hide_parameters``).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable

_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")


class SenderFault(Exception):
    """The input or the address is at fault, not the service (logged at info)."""


def without_addresses(text: str, shown: Callable[[str], str] = lambda _addr: "<address>"
                      ) -> str:
    """``text`` with every address in it, as stored or as sent (IDNA), replaced by
    ``shown(address)``. A relay's answers often quote the recipient; logs and /healthz carry
    ids, not addresses (SECURITY.md), and the console masks them on a 举报's mail."""
    return _ADDRESS.sub(lambda m: shown(m.group(0)), text)


def redact(text: str) -> str:
    """``text`` without addresses, phone and ID-card numbers or accounts."""
    # Here, not at the top: handlers.digest pulls in SQLAlchemy, which the intake's prepare
    # processes (which import this module through the steps) never load.
    from handlers.digest.mask import mask_digits

    return mask_digits(without_addresses(text))


def report(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log ``exc``, met while doing ``what``, as the kind of error it is."""
    if isinstance(exc, SenderFault):
        logger.info("%s: %s", what, redact(str(exc)))
        return
    # The traceback as text, redacted: a logged exc_info would print the message unredacted.
    logger.error("%s failed: %s\n%s", what, exc.__class__.__name__,
                 redact("".join(traceback.format_exception(exc)).rstrip()))
