"""Body text for the parse step: HTML → plain text, clean Unicode, and the new part of a reply.

``handlers.parse`` hands every decoded body part through here. HTML becomes text with inscriptis
(tables and line breaks kept readable, <style>/<script> dropped), with nh3 as the fallback when
the HTML is too broken for lxml. ``clean_text`` removes what must never reach staff or the
classifier (NUL, BOM, zero-width and bidi-control characters, lone surrogates). ``split_reply``
finds where a citizen's reply ends and the quoted history begins.
"""

from __future__ import annotations

import binascii
import html as html_lib
import re

import nh3
from inscriptis import get_text
from inscriptis.model.config import ParserConfig

# Converting more HTML than this costs seconds and is never a citizen's own writing.
HTML_LIMIT = 4 * 1024 * 1024

_DROP = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u200b\u200c\u2060\u200e\u200f"
                   "\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]{0,200}>")
_CONFIG = ParserConfig(display_images=False, display_links=False)


def clean_text(text: str) -> str:
    """Normalise line ends, drop invisible/control characters, tidy blank lines and trailing space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DROP.sub("", text)
    text = _SURROGATE.sub("\ufffd", text).replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML body (no tags, no CSS, entities resolved)."""
    markup = _XML_DECL.sub("", _DROP.sub("", markup[:HTML_LIMIT]))
    if not markup.strip():
        return ""
    try:
        text = get_text(markup, _CONFIG)
    except Exception:  # lxml rejects some damaged markup; nh3 (html5ever) accepts anything
        text = html_lib.unescape(nh3.clean(markup, tags=set(), clean_content_tags={"script",
                                                                                   "style"}))
    return clean_text(text)


# --- reply splitting --------------------------------------------------------------------------
# Hand-written: no maintained Python library knows the Chinese clients' quote headers
# (163/QQ/Foxmail/Outlook-CN); the patterns follow what those clients emit.
_SEPARATOR = re.compile(r"^-{2,}\s*(原始邮件|原始郵件|原邮件|original message|original)\s*-{2,}$",
                        re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"(写道|寫道|wrote)\s*[:：]$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\*?(发件人|寄件者|寄件人|发信人|from)\s*\*?\s*[:：]", re.IGNORECASE)
_HEADER_OTHER = re.compile(r"^\*?(发送时间|日期|时间|sent|date|收件人|to|主题|subject|抄送|cc)"
                           r"\s*\*?\s*[:：]", re.IGNORECASE)
_RULE = re.compile(r"^[_\-=]{8,}$")
_FORWARD_RULE = re.compile(r"^[_\-=]{2,}\s*(转发的邮件|转发邮件|转发邮件信息|forwarded message|"
                           r"begin forwarded message)?\s*[_\-=]*$", re.IGNORECASE)
_MAX_MARKER_LINE = 300


def _attribution(lines: list[str], i: int) -> bool:
    """'在 … <x@y> 写道：' / 'On …, X <x@y> wrote:' possibly wrapped over two lines."""
    line = lines[i].strip()
    if not line or len(line) > _MAX_MARKER_LINE:
        return False
    joined = line
    if not _ATTRIBUTION_END.search(line) and i + 1 < len(lines):
        joined = f"{line} {lines[i + 1].strip()}"
        if not (line.lower().startswith(("on ", "在")) and _ATTRIBUTION_END.search(joined)):
            return False
    elif not _ATTRIBUTION_END.search(line):
        return False
    # Precision: a citizen writing '他在信中写道：' is not a quote header; clients always
    # name an address there, or the next line is already quoted.
    nxt = next((x.strip() for x in lines[i + 1:i + 4] if x.strip()), "")
    return "@" in joined or nxt.startswith(">")


def _header_block(lines: list[str], i: int) -> bool:
    """Outlook/Foxmail 'From:/发件人:' followed by two more header lines within the block."""
    if not _HEADER_FROM.match(lines[i].strip()) or len(lines[i]) > _MAX_MARKER_LINE:
        return False
    kinds = {_HEADER_OTHER.match(x.strip()).group(1).lower()
             for x in lines[i + 1:i + 7] if _HEADER_OTHER.match(x.strip())}
    return len(kinds) >= 2


def _quote_start(lines: list[str]) -> int | None:
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or len(line) > _MAX_MARKER_LINE:
            continue
        if _SEPARATOR.match(line) or _attribution(lines, i):
            return i
        if _header_block(lines, i):
            # Outlook draws a rule line just above its header block: cut there too.
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            return j if j >= 0 and _RULE.match(lines[j].strip()) else i
    return None


def split_reply(text: str) -> str:
    """The new part of a reply: text above the quoted history, without '>' quoted lines.

    Returns ``text`` unchanged when there is no quote or nothing would be left.
    """
    lines = text.split("\n")
    cut = _quote_start(lines)
    kept = lines if cut is None else lines[:cut]
    while kept and (not kept[-1].strip() or _FORWARD_RULE.match(kept[-1].strip())):
        kept = kept[:-1]  # the forward/rule line that introduced the quoted block
    unquoted = [line for line in kept if not line.lstrip().startswith(">")]
    new = clean_text("\n".join(unquoted))
    return new or text


# --- uuencoded blocks inside plain text ---------------------------------------------------------
_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} (.{1,255})$")


def _uudecode_line(line: bytes) -> bytes:
    """One uuencoded line; like the removed ``uu`` module, tolerate encoders that pad oddly."""
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3 if line else 0
        try:
            return binascii.a2b_uu(line[:nbytes])
        except binascii.Error:
            return b""


def uudecode(lines: list[str]) -> bytes:
    """Decode the body lines of a uuencoded block (the stdlib ``uu`` module is gone in 3.13)."""
    out = []
    for line in lines:
        if line.strip() in ("", "`", "end"):
            continue
        out.append(_uudecode_line(line.encode("latin-1", "replace")))
    return b"".join(out)


def extract_uuencoded(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Remove 'begin 644 name … end' blocks from text; return (text, [(name, data)])."""
    if "begin " not in text:
        return text, []
    lines = text.split("\n")
    kept: list[str] = []
    found: list[tuple[str, bytes]] = []
    i = 0
    while i < len(lines):
        m = _UU_BEGIN.match(lines[i].rstrip("\r"))
        end = _block_end(lines, i) if m else None
        if m and end is not None:
            found.append((m.group(1).strip(), uudecode(lines[i + 1:end])))
            i = end + 1
            continue
        kept.append(lines[i])
        i += 1
    return "\n".join(kept), found


def _block_end(lines: list[str], start: int) -> int | None:
    for j in range(start + 1, len(lines)):
        line = lines[j].rstrip("\r")
        if line == "end":
            return j
        if line and not (32 <= ord(line[0]) <= 96):
            return None
    return None
