"""Second pipeline step: tell machine mail (auto-replies, bounces, list mail) from citizens' mail.

parse → **loop_guard** → classify → store → acknowledge. A machine message is still stored (staff
may want to see an out-of-office or a bounce) but must never be acknowledged: answering an
auto-responder starts a mail loop. Signals follow RFC 3834 (Auto-Submitted), RFC 2369/2919
(List-*), RFC 3464 (delivery reports) and the de-facto headers of Exchange, Postfix, qmail and the
Chinese webmail providers. Headers are decisive; subject wording alone only counts when it is a
client-generated prefix (“自动回复：”, “Undeliverable:”), so a citizen's “回复：关于休假…” stays
a citizen's mail. Bounces win over auto-replies because a report is the stronger fact.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import Message
from email.parser import BytesParser

from handlers.mail.headers import (
    header_text,
    message_ids,
    parse_address,
    raw_header,
    raw_headers,
    unicode_raw,
)
from handlers.mail.parsed import ParsedMail
from handlers.mail.policy import POLICY
from handlers.step import Context, Intake, LoopPolicy, Step, one_by_one
from handlers.tracking import signed_parts
from storage.clock import utcnow

_AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoresponse",
                      "X-AutoReply-From", "X-Mail-Autoreply")
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post")
_NOREPLY = re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreply[-_.+].*|"
                      r".*[-_.+]no[-_.]?reply|auto[-_.]?reply|autoresponder|bounces?([-_.+].*)?)$")
_DAEMON = re.compile(r"^(mailer[-_.]?daemon|postmaster|mail[-_.]?delivery[-_.]?(system|subsystem))$")
# Subject wording of auto-replies and bounces, only at the very start: either in brackets
# ("【自动回复】…") or followed by a separator or the end ("自动回复：<original subject>").
# So "回复：关于休假…" or "休假期间派出所不办户口？" never match.
_AUTO_WORDS = (r"自动回复|自动答复|自動回覆|自動答覆|自动应答|自动回信|休假(?:通知|中)?|不在办公室|"
               r"外出(?:通知|中)?|out of (?:the )?office(?: autoreply)?|automatic reply|"
               r"auto(?:matic)?[- ]?reply|autoreply|auto[- ]?response|vacation(?: reply)?|"
               r"away from (?:the )?office|abwesenheitsnotiz|réponse automatique")
_BOUNCE_WORDS = (r"系统退信|退信(?:通知)?|邮件投递失败|投递失败|未送达|无法送达|邮件被退回|undeliverable|"
                 r"undelivered mail(?: returned to sender)?|delivery status notification|"
                 r"mail delivery (?:failed|failure|system)|delivery failure|returned mail|"
                 r"failure notice|non[- ]?delivery report|message not delivered|"
                 r"delivery has failed")


def _subject_pattern(words: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:[\[【(（]\s*({words})\s*[\]】)）]|({words})\s*(?:[:：\-—(（]|$))",
                      re.IGNORECASE)


_AUTO_SUBJECT = _subject_pattern(_AUTO_WORDS)
_BOUNCE_SUBJECT = _subject_pattern(_BOUNCE_WORDS)


def _subject_word(pattern: re.Pattern[str], subject: str) -> str | None:
    m = pattern.match(subject)
    return (m.group(1) or m.group(2)).lower() if m else None


_STATUS = re.compile(r"(?im)^\s*status\s*:\s*([245])\.\d{1,3}\.\d{1,3}")
_STATUS_CODE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_TEXT_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b|\b(5[0-5]\d)\s")
_TEXT_MSGID = re.compile(r"(?im)^\s*message-id\s*:\s*<([^<>\s]{1,500})>")
_REPORT_TYPES = ("delivery-status", "delivery-report")


def _local(addr: str | None) -> str:
    return (addr or "").rsplit("@", 1)[0].lower()


def _value(msg: Message, name: str) -> str | None:
    value = header_text(msg, name)
    return value.lower() if value is not None else None


def _bounce_signal(p: ParsedMail) -> str | None:
    msg = p.headers
    ctype = (raw_header(msg, "Content-Type") or "").lower()
    if ctype.lstrip().startswith("multipart/report") and any(t in ctype for t in _REPORT_TYPES):
        return "header:content-type=multipart/report"
    if raw_header(msg, "X-Failed-Recipients") is not None:
        return "header:x-failed-recipients"
    for name in ("From", "Sender"):
        addr = p.from_addr if name == "From" else parse_address(raw_header(msg, name))[0]
        if _DAEMON.match(_local(addr)):
            return f"sender:{_local(addr)}"
    word = _subject_word(_BOUNCE_SUBJECT, p.subject)
    if word:
        return f"subject:{word}"
    return None


def _autoreply_signal(p: ParsedMail, policy: LoopPolicy) -> str | None:
    msg = p.headers
    submitted = _value(msg, "Auto-Submitted")
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"header:auto-submitted={submitted.split(';')[0].strip()}"
    for name in ("Precedence", "X-Precedence"):
        if (_value(msg, name) or "") in ("auto_reply", "auto-reply"):
            return f"header:{name.lower()}=auto_reply"
    for name in _AUTOREPLY_HEADERS:
        value = _value(msg, name)
        if value is not None and value not in ("no", "false", "0", "off"):
            return f"header:{name.lower()}"
    if (_value(msg, "X-Autogenerated") or "") == "reply":
        return "header:x-autogenerated=reply"
    suppress = _value(msg, "X-Auto-Response-Suppress") or ""
    if any(w in re.split(r"[\s,;]+", suppress) for w in ("all", "autoreply", "oof")):
        return "header:x-auto-response-suppress"
    return _own_signal(p, policy)


def _own_signal(p: ParsedMail, policy: LoopPolicy) -> str | None:
    """Our own mail coming back: our loop header, X-Loop naming us, our address, or a
    Message-ID signed with our secret (any purpose: acknowledgement, reply, digest)."""
    msg = p.headers
    if raw_header(msg, policy.loop_header) is not None:
        return f"header:{policy.loop_header.lower()}"
    own = {a.lower() for a in policy.own_addresses}
    for value in raw_headers(msg, "X-Loop"):
        if any(a in unicode_raw(value).lower() for a in own):
            return "header:x-loop"
    if p.from_addr and p.from_addr in own:
        return "sender:own-address"
    if p.message_id and signed_parts(policy.secret, p.message_id) is not None:
        return "message-id:signed"
    return None


def machine_kind(p: ParsedMail, policy: LoopPolicy) -> tuple[str | None, str | None]:
    """(auto, reason): auto is None | "auto-reply" | "bounce" | "list"."""
    bounce = _bounce_signal(p)
    if bounce:
        return "bounce", bounce
    auto = _autoreply_signal(p, policy)
    if auto:
        return "auto-reply", auto
    # RFC 5321 §4.5.5: a null reverse-path marks a notification; with no auto-reply header it
    # is a delivery report from a server that wrote no report structure.
    if (raw_header(p.headers, "Return-Path") or "").strip() in ("<>", "< >"):
        return "bounce", "header:return-path=<>"
    listed = next((n for n in _LIST_HEADERS if raw_header(p.headers, n) is not None), None)
    if listed:
        return "list", f"header:{listed.lower()}"
    for name in ("Precedence", "X-Precedence"):
        value = _value(p.headers, name) or ""
        if value in ("bulk", "junk", "list"):
            return "list", f"header:{name.lower()}={value}"
    if _NOREPLY.match(_local(p.from_addr)):
        return "auto-reply", f"sender:{_local(p.from_addr)}"
    word = _subject_word(_AUTO_SUBJECT, p.subject)
    if word:
        return "auto-reply", f"subject:{word}"
    return None, None


def _report_parts(msg: Message) -> tuple[list[str], list[str]]:
    """(Message-IDs of returned originals, status lines text) from a report's MIME parts."""
    ids: list[str] = []
    statuses: list[str] = []
    try:
        parts = list(msg.walk())[:200]
    except RecursionError:
        parts = []
    for part in parts:
        ctype = part.get_content_type().lower()
        payload = part.get_payload()
        if (ctype in ("message/rfc822", "message/global") and isinstance(payload, list) and payload
                and isinstance(payload[0], Message)):
            ids += message_ids(raw_header(payload[0], "Message-ID"))
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            data = part.get_payload(decode=True)
            data = data if isinstance(data, bytes) else b""
            head = BytesParser(policy=POLICY).parsebytes(data, headersonly=True)
            ids += message_ids(raw_header(head, "Message-ID"))
        elif ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = payload if isinstance(payload, list) else []
            statuses += [str(raw_header(b, "Status") or "") for b in blocks if isinstance(b, Message)]
            if isinstance(payload, str):
                statuses += [m.group(0) for m in _STATUS.finditer(payload)]
    return ids, statuses


def bounced_message_ids(p: ParsedMail) -> tuple[list[str], bool]:
    """(Message-IDs of the original messages a bounce reports, permanent failure?)."""
    try:
        ids, statuses = _report_parts(p.headers)
    except Exception:  # a damaged report still yields what the headers and text say
        ids, statuses = [], []
    ids += _TEXT_MSGID.findall(p.text)
    ids += ([p.in_reply_to] if p.in_reply_to else []) + p.references
    unique = list(dict.fromkeys(i for i in ids if i))
    codes = [m.group(1) for s in statuses if (m := _STATUS_CODE.search(s))]
    if codes:
        return unique, "5" in codes
    # No machine-readable status: read the enhanced status or SMTP reply code in the text.
    m = _TEXT_STATUS.search(p.text)
    return unique, bool(m and ((m.group(1) or "") == "5" or m.group(2)))


# -- pipeline step ----------------------------------------------------------------------
# Step 2: machine mail is stored like everything else but marked, kept out of the review queue and
# never acknowledged. A bounce of one of our messages marks that outbox row bounced; a permanent
# bounce stops mail to that address for a while.
SUPPRESS_FOR = timedelta(days=30)


def judge(intake: Intake, policy: LoopPolicy) -> None:
    """The work of the step that needs no database (its prepare half runs it ahead)."""
    if intake.parsed is not None:
        intake.auto, intake.auto_reason = machine_kind(intake.parsed, policy)


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    for intake in intakes:
        if STEP.name not in intake.ahead.done:
            judge(intake, ctx.loop_policy)
        if intake.auto == "bounce":  # rare: its statements may go one by one
            await _record_bounce(intake, ctx)


async def _record_bounce(intake: Intake, ctx: Context) -> None:
    # Imported here: ``judge`` runs in the intake's prepare processes, which should not load
    # SQLAlchemy for it (about 22 MB).
    from storage import outbox

    assert intake.parsed is not None
    ids, permanent = bounced_message_ids(intake.parsed)
    recipients = await outbox.mark_bounced(ctx.session, ids, intake.auto_reason or "bounce")
    if recipients:
        intake.flags["bounced"] = ids
    if permanent:
        for addr in recipients:
            await outbox.suppress(ctx.session, addr, "permanent bounce", utcnow() + SUPPRESS_FOR)


STEP = Step("loop-guard", process_many,
            prepare=one_by_one(lambda intake, ctx: judge(intake, ctx.loop_policy)))
