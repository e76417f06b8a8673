"""Body text for the parse step: HTML → plain text, clean Unicode, and the new part of a reply.

``handlers.parse`` hands every decoded body part through here. HTML becomes text with inscriptis
(tables and line breaks kept readable, <style>/<script> dropped) under its strict CSS profile, so
inline elements (the spans Foxmail, QQ, Outlook and Coremail wrap around every few characters)
add no whitespace inside a Chinese sentence; nh3 is the fallback when the HTML is too broken or
too deep for lxml. Nesting deeper than ``FLAT_DEPTH`` is flattened to its text, never dropped. ``clean_text`` removes what must never reach staff or the
classifier (NUL, BOM, zero-width and bidi-control characters, lone surrogates). ``split_reply``
finds where a citizen's reply ends and the quoted history begins.
"""

from __future__ import annotations

import binascii
import html as html_lib
import re
import threading

import lxml.etree
import lxml.html
import nh3
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement

# Converting more HTML than this costs seconds and is never a citizen's own writing.
HTML_LIMIT = 4 * 1024 * 1024

_DROP = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u200b\u200c\u2060\u200e\u200f"
                   "\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_BLOCK_TAG = re.compile(r"<(?:br|/?(?:p|div|li|tr|table|h[1-6]|blockquote|pre|ul|ol|section|"
                        r"article|header|footer))\b[^>]{0,500}>", re.IGNORECASE)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]{0,200}>")
# inscriptis' default ("relaxed") profile pads <span> with spaces and indents <div>s, which
# splits Chinese words ("投资 移民 简讯"). The strict profile adds nothing around inline
# elements; they are named here so that the rule is explicit and survives a change of defaults.
_INLINE = ("span", "a", "b", "font", "em", "strong", "i", "u", "s", "small", "big", "sub", "sup",
           "label", "abbr", "code", "tt", "var", "cite", "dfn", "kbd", "samp", "mark", "ins",
           "del", "strike", "bdi", "bdo", "time", "o:p", "nobr", "wbr")
_CSS = {**CSS_PROFILES["strict"], **{tag: HtmlElement(tag) for tag in _INLINE}}
_CONFIG = ParserConfig(css=_CSS, display_images=False, display_links=False)
# Deeper than this, inscriptis (recursive) would hit Python's recursion limit; real mail nests
# a few dozen levels, hostile or machine-made HTML thousands.
FLAT_DEPTH = 200
# libxml2 drops everything below 2,048 levels even with huge_tree: past that, nh3 reads it.
_LXML_MAX_DEPTH = 2000
_LOCAL = threading.local()


def clean_text(text: str) -> str:
    """Normalise line ends, drop invisible/control characters, tidy blank lines and trailing space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DROP.sub("", text)
    text = _SURROGATE.sub("\ufffd", text).replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def html_to_text(markup: str) -> tuple[str, str | None]:
    """Readable plain text of an HTML body (no tags, no CSS, entities resolved); (text, defect)."""
    markup = _XML_DECL.sub("", _DROP.sub("", markup[:HTML_LIMIT]))
    if not markup.strip():
        return "", None
    defect = None
    try:
        # huge_tree: without it libxml2 silently drops everything nested deeper than 255.
        tree = lxml.html.document_fromstring(markup, parser=_parser())
        # A tree cannot be deeper than its number of tags: the walk is only paid by huge HTML.
        depth = _depth(tree) if markup.count("<") > FLAT_DEPTH else 0
        if depth >= _LXML_MAX_DEPTH:
            raise RecursionError("nesting beyond what libxml2 keeps")
        if depth > FLAT_DEPTH:
            _flatten(tree, FLAT_DEPTH)
            defect = f"HTML 嵌套超过 {FLAT_DEPTH} 层，深层内容已合并为纯文本（版式丢失）"
        text = Inscriptis(tree, _CONFIG).get_text()
    except (Exception, RecursionError):
        # lxml rejects some damaged markup; nh3 (html5ever) accepts anything at any depth.
        # It knows no layout, so block boundaries become line breaks before it strips the tags.
        text = html_lib.unescape(nh3.clean(_BLOCK_TAG.sub("\n", markup), tags=set(),
                                           clean_content_tags={"script", "style"}))
        if text.strip():
            defect = defect or "HTML 无法按结构转换，已提取纯文本（版式丢失）"
    return clean_text(text), defect


def _parser() -> lxml.html.HTMLParser:
    """This thread's HTML parser (lxml parsers must not be shared between threads)."""
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = lxml.html.HTMLParser(huge_tree=True)
    return parser


def _depth(tree: lxml.html.HtmlElement) -> int:
    """The deepest element's nesting level (iterative: the tree may be thousands deep)."""
    depth = deepest = 0
    for event, _el in lxml.etree.iterwalk(tree, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def _flatten(tree: lxml.html.HtmlElement, limit: int) -> None:
    """Replace every element at nesting level ``limit`` by its own text content."""
    stack = [(tree, 1)]
    while stack:
        el, level = stack.pop()
        if level >= limit:
            tail = el.tail
            text = el.text_content() if isinstance(el.tag, str) else ""
            el.clear()
            el.text, el.tail = text, tail
            continue
        stack.extend((child, level + 1) for child in el)


# --- format=flowed (RFC 3676) ------------------------------------------------------------------
# Hand-written: the stdlib's email package does not undo format=flowed, and no maintained
# library does only that. Twenty lines of RFC 3676 §4 are cheaper than a dependency.


def unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of a format=flowed body; with DelSp=yes the space that marks
    a soft break is not part of the text (so a Chinese sentence joins without a space)."""
    out: list[str] = []
    paragraph: list[str] = []
    depth_open = -1
    for raw in text.replace("\r\n", "\n").split("\n"):
        stripped = raw.lstrip(">")
        depth = len(raw) - len(stripped)
        if stripped.startswith(" "):  # space-stuffing (§4.4)
            stripped = stripped[1:]
        if paragraph and depth != depth_open:  # a quote depth change ends a paragraph (§4.5)
            out.append(_quoted(depth_open, "".join(paragraph)))
            paragraph = []
        depth_open = depth
        flowed = stripped.endswith(" ") and stripped != "-- "
        paragraph.append(stripped[:-1] if flowed and delsp else stripped)
        if not flowed:
            out.append(_quoted(depth, "".join(paragraph)))
            paragraph = []
    if paragraph:
        out.append(_quoted(depth_open, "".join(paragraph)))
    return "\n".join(out)


def _quoted(depth: int, line: str) -> str:
    return f"{'>' * depth} {line}" if depth else line


# --- text/enriched (RFC 1896) -------------------------------------------------------------------
# Hand-written: no maintained library reads text/enriched; its rules are four lines of §2.
_ENRICHED_PARAM = re.compile(r"<param>.*?</param>", re.IGNORECASE | re.DOTALL)
_ENRICHED_TAG = re.compile(r"</?[A-Za-z0-9-]{1,60}>")
_ENRICHED_BREAKS = re.compile(r"\n+")


def enriched_to_text(text: str) -> str:
    """Plain text of text/enriched (and the older text/richtext): formatting commands dropped,
    "<<" is "<", a lone line break is a space and n breaks are n-1 line breaks."""
    text = _ENRICHED_PARAM.sub("", text.replace("\r\n", "\n"))
    text = _ENRICHED_BREAKS.sub(lambda m: " " if len(m.group(0)) == 1 else m.group(0)[1:], text)
    return _ENRICHED_TAG.sub("", text.replace("<<", "\x00")).replace("\x00", "<")


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
    kinds = {m.group(1).lower()
             for x in lines[i + 1:i + 7] if (m := _HEADER_OTHER.match(x.strip()))}
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
