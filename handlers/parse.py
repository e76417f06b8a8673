"""The first pipeline step: raw RFC 5322 bytes → ``ParsedMail`` (parse → loop_guard → classify …).

Mail reaching the commission's mailbox comes from every Chinese client of the last twenty years:
GB2312 labels over GBK bytes, raw 8-bit headers, HTML-only bodies, truncated base64, typos in
transfer encodings. The stdlib ``email`` package with ``policy.default`` splits the MIME tree;
``mail.headers``/``mail.charset`` decode headers and bodies with superset fallbacks and detection,
``mail.text`` turns HTML into text and finds the new part of a reply, ``mail.parts`` decodes leaf
parts and names attachments safely. A header block or Content-Type the stdlib could not read is
repaired (``mail.repair.repair_raw``) and read once more. ``parse_message`` never raises and does
bounded work: what it could not read or had to guess is reported in ``defects`` for staff, never
silently dropped; defects name sizes and counts, not a letter's text or its writer.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import cast

from handlers.mail.charset import decode_bytes
from handlers.mail.headers import (
    address_list,
    header_text,
    message_ids,
    parse_date,
    raw_header,
    raw_headers,
    sender,
)
from handlers.mail.parsed import Attachment, ParsedMail
from handlers.mail.parts import param, payload_bytes, raw_filename, safe_filename
from handlers.mail.policy import POLICY
from handlers.mail.repair import repair_raw
from handlers.mail.text import (
    clean_text,
    enriched_to_text,
    extract_uuencoded,
    html_to_text,
    split_reply,
    unflow,
)
from handlers.step import Context, Intake, Step, one_by_one
from handlers.text import one_line

MAX_BYTES = 25 * 1024 * 1024
MAX_DEPTH = 30      # nesting beyond this is an attack or a loop of forwards, not a citizen
MAX_PARTS = 500
# Parts of a delivery report written by and for machines; loop_guard reads them from ``headers``.
_REPORT_MACHINE_PARTS = frozenset({
    "message/delivery-status", "message/global-delivery-status", "message/disposition-notification",
    "message/global-disposition-notification", "text/rfc822-headers", "message/rfc822-headers",
    "message/global-headers", "message/rfc822", "message/global"})
# Defects after which repair_raw may recover headers or a MIME tree the stdlib could not read.
_REPAIRABLE = ("MIME 结构缺陷：MissingHeaderBodySeparatorDefect",
               "MIME 结构缺陷：NoBoundaryInMultipartDefect")
_TEXT_SUBTYPES = frozenset({"plain", "html", "enriched", "richtext"})
# Types that say nothing about the content; an unnamed inline part of one may be the letter.
_OPAQUE = frozenset({"application/octet-stream", "application/unknown", "unknown/unknown",
                     "application/x-unknown-content-type"})
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\xd0\xcf\x11\xe0",
                 b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b", b"BM", b"II*\x00", b"MM\x00*", b"RIFF",
                 b"{\\rtf", b"\x78\x9f\x3e\x22")
_CONTROL_BYTES = bytes(c for c in range(32) if c not in (9, 10, 12, 13)) + b"\x7f"
_HTML_START = re.compile(rb"\s*(?:\xef\xbb\xbf)?\s*<(?:!doctype\s+html|html|head|body|div|p|meta)\b",
                         re.IGNORECASE)
_CID_REF = re.compile(r"cid:([^\"'\s>)]{1,300})", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]{1,40})",
                           re.IGNORECASE)


@dataclass
class _State:
    """What a walk over one message accumulates across branches."""

    extract: bool
    attachments: list[tuple[Attachment, bool]] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    cids: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)
    # HTML attachments with their charset: the text of a letter that has no body but an
    # attached .html file (what some webmail "save as" and scanner gateways send).
    text_files: list[tuple[Attachment, str | None]] = field(default_factory=list)
    parts: int = 0

    def defect(self, text: str) -> None:
        if text not in self.defects and len(self.defects) < 50:
            self.defects.append(text)


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # header-object parsing of a hostile Content-Type
        return "text/plain"


def _disposition(part: Message) -> str | None:
    value = raw_header(part, "Content-Disposition")
    return value.split(";", 1)[0].strip().lower() if value else None


def _walk(part: Message, depth: int, texts: list[str], st: _State, in_related: bool = False) -> None:
    st.parts += 1
    if depth > MAX_DEPTH or st.parts > MAX_PARTS:
        st.defect("MIME 结构过深或部件过多，其余部分未解析")
        return
    for d in getattr(part, "defects", []):
        st.defect(f"MIME 结构缺陷：{type(d).__name__}")
    ctype = _content_type(part)
    # Only a list payload is fetched: get_payload() of a leaf re-decodes it and can raise.
    # The parser fills that list with Message parts (the cast says so to mypy).
    payload = cast("list[Message]", part.get_payload()) if part.is_multipart() else None
    if ctype == "message/external-body":
        # RFC 2046 §5.2.3: only a pointer (FTP, URL, mail server) to a body that was not sent;
        # its inner headers describe that body, so it is neither text nor a forwarded message.
        access = param(part, "Content-Type", "access-type") or "?"
        st.defect(f"邮件引用了未随信发送的外部正文（message/external-body，access-type={access[:20]}）")
        return
    if isinstance(payload, list) and ctype.startswith("message/"):
        if payload and isinstance(payload[0], Message):
            _forwarded(part, payload[0], depth, texts, st)
        return
    if isinstance(payload, list):
        subtype = ctype.split("/", 1)[1]
        if subtype == "alternative":
            _alternative(payload, depth, texts, st)
        elif subtype == "related":
            _related(part, payload, depth, texts, st)
        else:
            for sub in payload:
                if subtype == "report" and _content_type(sub) in _REPORT_MACHINE_PARTS:
                    continue
                _walk(sub, depth + 1, texts, st)
        return
    _leaf(part, ctype, texts, st, in_related)


def _alternative(subs: list[Message], depth: int, texts: list[str], st: _State) -> None:
    """One rendering of multipart/alternative: plain text if it has any, else the richest."""
    branches = []
    for sub in subs:
        found: list[str] = []
        _walk(sub, depth + 1, found, st)
        branches.append((_content_type(sub), [t for t in found if t.strip()]))
    plain = [t for ct, t in branches if ct == "text/plain" and t]
    rich = [t for _, t in reversed(branches) if t]
    texts.extend(plain[0] if plain else rich[0] if rich else [])


def _related(part: Message, subs: list[Message], depth: int, texts: list[str], st: _State) -> None:
    """multipart/related: the root is the body, the other parts are its inline resources."""
    start = message_ids(param(part, "Content-Type", "start"))
    root = next((s for s in subs if start and message_ids(raw_header(s, "Content-ID")) == start),
                subs[0] if subs else None)
    for sub in subs:
        _walk(sub, depth + 1, texts, st, in_related=sub is not root)


def _forwarded(part: Message, inner: Message, depth: int, texts: list[str], st: _State) -> None:
    """A forwarded message/rfc822: its text is appended, marked, and it is kept as an .eml."""
    inner_texts: list[str] = []
    _walk(inner, depth + 1, inner_texts, st)
    heading = ["---------- 转发的邮件 ----------"]
    for label, name in (("发件人", "From"), ("日期", "Date"), ("主题", "Subject")):
        value = header_text(inner, name)
        if value:
            heading.append(f"{label}：{value}")
    body = "\n\n".join(clean_text(t) for t in inner_texts if t.strip())
    texts.append("\n".join(heading) + "\n\n" + body)
    name = raw_filename(part) or f"{header_text(inner, 'Subject') or 'forwarded'}.eml"
    data = b""
    if st.extract:
        try:
            data = inner.as_bytes(policy=email.policy.compat32)
        except Exception:  # a damaged inner message still gets listed
            st.defect("转发的邮件无法重新序列化，附件内容为空")
    _add_attachment(st, name, "message/rfc822", data, None, False)


def _leaf(part: Message, ctype: str, texts: list[str], st: _State, in_related: bool) -> None:
    maintype, _, subtype = ctype.partition("/")
    filename = raw_filename(part)
    is_body = (maintype == "text" and subtype in _TEXT_SUBTYPES) or maintype == "multipart"
    inline = not filename and _disposition(part) != "attachment"
    if is_body and inline:
        texts.append(_body_text(part, subtype, st))
        return
    cid_list = message_ids(raw_header(part, "Content-ID"))
    if not st.extract:
        st.skipped.append(safe_filename(filename, len(st.skipped) + 1, ctype))
        return
    data, defects = payload_bytes(part)
    for d in defects:
        st.defect(d)
    if inline and not cid_list and ctype in _OPAQUE and _is_text(data):
        # Some mailers label every part application/octet-stream; unnamed, inline text in one
        # is the letter itself, not a file.
        st.defect(f"{ctype} 部件内容为文本，按正文读取")
        texts.append(_decode_text(part, data, _html_or_plain(data), st))
        return
    _add_attachment(st, filename, ctype, data, cid_list[0] if cid_list else None, in_related)
    if ctype == "text/html" or (filename or "").lower().endswith((".html", ".htm")):
        st.text_files.append((st.attachments[-1][0], param(part, "Content-Type", "charset")))


def _body_text(part: Message, subtype: str, st: _State) -> str:
    data, defects = payload_bytes(part)
    for d in defects:
        st.defect(d)
    if subtype == "multipart":  # a multipart whose boundary is missing: read it as text
        st.defect("MIME 分界线缺失，按纯文本读取")
    return _decode_text(part, data, subtype, st)


def _decode_text(part: Message, data: bytes, subtype: str, st: _State,
                 charset: str | None = None) -> str:
    """Text of a body part's bytes: charset, HTML to text, format=flowed, uuencoded files."""
    charset = charset or param(part, "Content-Type", "charset")
    if charset is None and subtype == "html":
        meta = _META_CHARSET.search(data[:4096])
        charset = meta.group(1).decode("ascii") if meta else None
    text, defect = decode_bytes(data, charset)
    if defect:
        st.defect(defect)
    if subtype == "html":
        st.cids.update(m.lower() for m in _CID_REF.findall(text))
        text, defect = html_to_text(text)
        if defect:
            st.defect(defect)
        return text
    if subtype in ("enriched", "richtext"):
        return enriched_to_text(text)
    if ("flowed" in str(part.get("Content-Type", "")).lower()  # the policy's cached header
            and (param(part, "Content-Type", "format") or "").lower() == "flowed"):
        delsp = (param(part, "Content-Type", "delsp") or "").lower() == "yes"
        text = unflow(text, delsp)
    text, blocks = extract_uuencoded(text)
    for name, blob in blocks:
        _add_attachment(st, name, "application/octet-stream", blob, None, False)
    return text


def _text_from_files(st: _State) -> str:
    """A letter with no body whose words are in an attached .html file: read the file (it
    stays an attachment too), so staff, search and the classifier see the letter."""
    found = []
    for att, charset in st.text_files:
        text = clean_text(_decode_text(Message(), att.data, "html", st, charset))
        if text:
            found.append(text)
            st.defect("邮件无正文，正文取自所附的 HTML 文件")
    return clean_text("\n\n".join(found))


def _is_text(data: bytes) -> bool:
    """Bytes that are text in some charset: no NUL, hardly any control bytes, no file magic."""
    head = data[:4096]
    if not head.strip() or b"\x00" in head or head.startswith(_BINARY_MAGIC):
        return False
    controls = sum(head.count(bytes([c])) for c in _CONTROL_BYTES)
    return controls * 100 <= len(head)


def _html_or_plain(data: bytes) -> str:
    return "html" if _HTML_START.match(data[:512]) else "plain"


def _add_attachment(st: _State, name: str | None, ctype: str, data: bytes, cid: str | None,
                    in_related: bool) -> None:
    index = len(st.attachments) + 1
    att = Attachment(safe_filename(name, index, ctype), ctype, data, False, cid)
    st.attachments.append((att, in_related))


def parse_message(raw: bytes, *, max_bytes: int = MAX_BYTES) -> ParsedMail:
    """Parse raw mail bytes; never raises, always returns the best reading it could make."""
    try:
        return _parse(bytes(raw), max_bytes)
    except (Exception, RecursionError) as exc:  # last line of defence: keep the message readable
        return _fallback(bytes(raw or b""), f"解析出错（{type(exc).__name__}），仅提取了基本内容")


def _parse(raw: bytes, max_bytes: int) -> ParsedMail:
    msg, texts, st = _read(raw, max_bytes)
    if any(d in st.defects for d in _REPAIRABLE):
        # A header block or MIME parameters the stdlib could not read: repair, read again.
        fixed, repairs = repair_raw(raw)
        if repairs:
            msg, texts, st = _read(fixed, max_bytes)
            for note in repairs:
                st.defect(note)
    return _finish(msg, texts, st, max_bytes)


def _read(raw: bytes, max_bytes: int) -> tuple[Message, list[str], _State]:
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    st = _State(extract=len(raw) <= max_bytes)
    texts: list[str] = []
    _walk(msg, 0, texts, st)
    return msg, texts, st


def _finish(msg: Message, texts: list[str], st: _State, max_bytes: int) -> ParsedMail:
    for att, in_related in st.attachments:
        att.inline = bool(att.content_id and (in_related or att.content_id.lower() in st.cids))
    if st.skipped:
        st.defect(f"邮件超过 {max_bytes // (1024 * 1024)} MB 上限，附件未提取：" + "、".join(st.skipped[:20]))
    text = clean_text("\n\n".join(clean_text(t) for t in texts if t.strip()))
    if not text and st.text_files:
        text = _text_from_files(st)
    return _assemble(msg, text, [a for a, _ in st.attachments], st.defects, not st.extract)


def _assemble(msg: Message, text: str, attachments: list[Attachment], defects: list[str],
              oversized: bool) -> ParsedMail:
    from_addr, from_name = sender(msg, defects)
    subject = header_text(msg, "Subject", defects) or ""
    date, date_defect = parse_date(raw_header(msg, "Date"))
    if date_defect:
        defects.append(date_defect)
    ids = message_ids(raw_header(msg, "Message-ID"))
    reply_to = message_ids(raw_header(msg, "In-Reply-To"))
    return ParsedMail(
        message_id=ids[0] if ids else None, from_addr=from_addr, from_name=from_name,
        subject=subject, date=date, text=text,
        new_text=split_reply(text) if text else text, attachments=attachments,
        in_reply_to=reply_to[0] if reply_to else None,
        references=message_ids(raw_header(msg, "References")),
        to_addrs=address_list(raw_headers(msg, "To") + raw_headers(msg, "Cc")),
        headers=msg, defects=defects, oversized=oversized)


def _fallback(raw: bytes, reason: str) -> ParsedMail:
    """Headers and the undecoded body as text, when the full parse failed."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    text = clean_text(decode_bytes(body[:MAX_BYTES], None)[0]) if body else ""
    try:
        msg = BytesParser(policy=POLICY).parsebytes(head + b"\n\n", headersonly=True)
        return _assemble(msg, text, [], [reason], len(raw) > MAX_BYTES)
    except (Exception, RecursionError):
        return ParsedMail(None, None, None, "", None, text, text, [], None, [], [],
                          EmailMessage(), [reason], len(raw) > MAX_BYTES)


def to_json(p: ParsedMail, auto: str | None) -> dict:
    """The ``feedback-bot parse-eml`` object (schema: shared/data/emails/README.md)."""
    return {
        "message_id": p.message_id,
        "from_addr": p.from_addr,
        "from_name": p.from_name,
        "subject": p.subject,
        "date": p.date.isoformat() if p.date else None,
        "text": p.text,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in p.attachments],
        "auto": auto,
        "in_reply_to": p.in_reply_to,
        "defects": p.defects,  # what was lost or guessed, as staff see it on the letter page
    }


# -- pipeline step ----------------------------------------------------------------------
# Step 1 of the pipeline: turn the raw input into sender, subject and text. Mail goes through
# parse_message; a form payload (web form, staff data entry) already has its fields.
REPORT_CHOICES = ("real", "anonymous")  # the form's 举报 choice: 实名 or 匿名


def _from_form(intake: Intake) -> None:
    form = intake.form or {}
    intake.from_name = one_line(form.get("name"), 100) or None
    intake.from_addr = (form.get("email") or "").strip().lower() or None
    intake.phone = (form.get("phone") or "").strip() or None
    intake.postal_address = one_line(form.get("address"), 200) or None
    intake.subject = one_line(form.get("subject"), 200)
    intake.text = (form.get("body") or "").strip()
    intake.new_text = intake.text
    # The writer's own word that this is a 举报 (bot/web/validate.py): it restricts the letter
    # in the store step whatever the classifier says; an anonymous one keeps no name.
    choice = form.get("report")
    if choice in REPORT_CHOICES:
        intake.flags["report"] = choice
        if choice == "anonymous":
            intake.from_name = None
    # 同意公开: the writer's consent to a public reply (handlers/public_reply.py).
    if form.get("public") == "yes":
        intake.flags["public"] = True


async def process_many(intakes: list[Intake], ctx: Context) -> None:
    """Pipeline step: fill each Intake's sender, subject and text fields (unless the intake
    worker already did, in its batch preparation)."""
    for intake in intakes:
        if STEP.name not in intake.ahead.done:
            fill(intake, ctx.max_message_bytes)


def fill(intake: Intake, max_bytes: int) -> None:
    """The work of the step: needs no database, so a batch can be parsed ahead of its
    transactions (the step's prepare half)."""
    if intake.raw is None:
        _from_form(intake)
        return
    parsed = parse_message(intake.raw, max_bytes=max_bytes)
    intake.parsed = parsed
    intake.from_name = parsed.from_name
    intake.from_addr = parsed.from_addr
    intake.subject = parsed.subject
    intake.text = parsed.text
    intake.new_text = parsed.new_text or parsed.text
    intake.message_id = parsed.message_id
    if parsed.defects:
        intake.flags["defects"] = parsed.defects
    if parsed.oversized:
        intake.flags["oversized"] = True


STEP = Step("parse", process_many,
            prepare=one_by_one(lambda intake, ctx: fill(intake, ctx.max_message_bytes)))
