"""Repairs for the parse step: a header block or MIME parameters the stdlib parser could not read.

``handlers.parse`` calls ``repair_raw`` only after the stdlib reported that the header block ended
early (MissingHeaderBodySeparatorDefect) or a multipart had no boundary: then the raw bytes are
repaired by general rules and parsed once more. Nothing is guessed about the content; the rules
only restore the structure RFC 5322 and RFC 2045 describe.
"""

from __future__ import annotations

import re

# The stdlib parser ends the header block at the first line that is neither a header nor a
# continuation, and everything after it becomes body: one unindented continuation line, or a
# "---- Original email message ----" line pasted above the headers, loses subject, sender and
# date. ``repair_raw`` is tried only when the parser reported such a defect.
_FIELD_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9_.-]{0,75}([ \t]*):")
_KNOWN = frozenset({b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"received",
                    b"mime-version", b"content-type", b"reply-to", b"return-path", b"sender"})
_MAX_LEADING_JUNK = 3
# A Content-Type whose parameters lack their ";" ("multipart/mixed" then a folded boundary line).
_UNSEPARATED = re.compile(rb"(?im)^(content-type:[ \t]*[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+)"
                          rb"(?=(?:\r?\n)?[ \t]+[a-z0-9*_-]+[ \t]*=)")


def repair_raw(raw: bytes) -> tuple[bytes, list[str]]:
    """(repaired bytes, what was repaired) for a message whose header block or MIME parameters
    the stdlib could not read; the bytes are returned unchanged when nothing general applies."""
    done = []
    fixed = _UNSEPARATED.sub(rb"\1;", raw)
    if fixed != raw:
        done.append("Content-Type 参数缺少分号，已按参数读取（恢复 MIME 分界线）")
    block = _repair_header_block(fixed)
    if block is not None:
        fixed, note = block
        done.append(note)
    return fixed, done


def _repair_header_block(raw: bytes) -> tuple[bytes, str] | None:
    nl = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    head, sep, body = raw.partition(nl + nl)
    lines = head.split(nl)
    mbox = 1 if lines[0].startswith(b"From ") else 0  # an mbox separator the stdlib reads
    start = next((i for i, line in enumerate(lines[:mbox + _MAX_LEADING_JUNK + 1])
                  if i >= mbox and _FIELD_LINE.match(line)), None)
    fields = [i for i, line in enumerate(lines) if _FIELD_LINE.match(line)]
    if start is None or not fields:
        return None
    names = {lines[i].split(b":", 1)[0].strip().lower() for i in fields}
    if not names & _KNOWN:
        return None
    last = fields[-1]
    end = last + 1  # continuation lines of the last header are indented, or the body begins
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    out: list[bytes] = []
    merged = 0
    for line in lines[start:end]:
        field = _FIELD_LINE.match(line)
        if field and field.group(1):  # "Subject : x": the stdlib takes no space before ':'
            line = line[:field.start(1)] + line[field.end(1):]
            merged += 1
        if line[:1] in (b" ", b"\t") or field or not out:
            out.append(line)
        else:
            out.append(b" " + line)
            merged += 1
    if start == mbox and not merged:
        return None  # only a missing blank line: the stdlib's reading is already right
    out[:0] = lines[:mbox]
    rest = lines[end:]
    # Lines after the last header that the block cannot hold begin the body, as the stdlib
    # would read them; the repaired block is closed with a blank line before them.
    tail = nl.join(rest) + (sep + body if sep else b"") if rest else body
    repaired = nl.join(out) + nl + nl + tail
    note = (f"邮件头前有 {start - mbox} 行非邮件头内容，已跳过并恢复其后的邮件头" if start > mbox
            else "邮件头格式错误（未缩进的续行或名称后的空格），已修复")
    return repaired, note
