"""Bytes → Unicode for mail bodies and headers: declared charset first, then supersets, then detection.

Used by ``handlers.parse`` (the first pipeline step). Policy, as in Salmon's ``encoding.py`` and
Zulip's email gateway: no declared charset is trusted blindly. A declared label is mapped to the
superset Chinese mailers really mean (gb2312 → gb18030, big5 → big5hkscs, us-ascii → utf-8), tried
strictly, and on failure the bytes go through UTF-8, charset-normalizer and GB18030 before a
last-resort ``errors="replace"`` decode that keeps losses visible and records a defect.
"""

from __future__ import annotations

import codecs

import charset_normalizer

# Labels real mailers write, mapped to the codec that decodes what they actually send.
# Why supersets: GB2312-labelled mail routinely contains GBK/GB18030 characters (镕, 喆, 䶮),
# Big5-labelled mail contains HKSCS characters, and "us-ascii" is the default a client
# writes while sending UTF-8.
_SUPERSETS: dict[str, str] = {
    "gb2312": "gb18030", "gb_2312": "gb18030", "gb_2312-80": "gb18030", "gb2312-80": "gb18030",
    "csgb2312": "gb18030", "euc-cn": "gb18030", "euccn": "gb18030", "x-euc-cn": "gb18030",
    "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "ms936": "gb18030",
    "windows-936": "gb18030", "936": "gb18030", "chinese": "gb18030", "csgbk": "gb18030",
    "gb18030": "gb18030", "gb-18030": "gb18030", "iso-ir-58": "gb18030",
    "big5": "big5hkscs", "big-5": "big5hkscs", "x-big5": "big5hkscs", "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs", "cp950": "big5hkscs", "ms950": "big5hkscs", "big5-hkscs": "big5hkscs",
    "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8", "iso646-us": "utf-8",
    "us": "utf-8", "7bit": "utf-8", "8bit": "utf-8", "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
    "x-unknown": "", "unknown": "", "unknown-8bit": "", "x-user-defined": "", "default": "",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "x-sjis": "cp932",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "windows-31j": "cp932",
    "iso-8859-8-i": "iso-8859-8", "tis-620": "cp874",
}

# Codecs whose decodes never fail and so never reveal a wrong label; a non-ASCII body labelled
# with one of them is checked against UTF-8 and detection first.
_NEVER_FAILS = frozenset(codecs.lookup(n).name for n in ("latin-1", "iso-8859-15", "cp1252",
                                                          "iso-8859-2", "cp1250"))

_MULTIBYTE = frozenset({"gb18030", "big5hkscs", "cp949", "cp932", "euc_jp", "euc_kr", "shift_jis"})

_CHINESE = ("utf_8", "gb18030", "big5hkscs")

# Detector results we accept for Chinese-language mail; anything else must beat GB18030.
_CJK_OR_UNICODE = frozenset({"gb18030", "gb2312", "gbk", "big5", "big5hkscs", "utf_8", "utf_16",
                             "utf_16_le", "utf_16_be", "utf_32", "cp949", "euc_kr", "euc_jp",
                             "shift_jis", "cp932", "iso2022_jp", "hz"})

# Charset-normalizer reads the whole input; capping keeps a 25 MB mislabelled body cheap.
_DETECT_LIMIT = 256 * 1024


def codec_for(label: str | None) -> str | None:
    """Return the Python codec for a MIME charset label ('' = unknown label, None = none given)."""
    if label is None:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name:
        return None
    if name in _SUPERSETS:
        return _SUPERSETS[name]
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return ""
    return _SUPERSETS.get(codec, codec)


def _strict(data: bytes, codec: str) -> str | None:
    """Decode strictly, tolerating only an incomplete sequence at the very end (truncated mail)."""
    try:
        dec = codecs.getincrementaldecoder(codec)(errors="strict")
        return dec.decode(data, final=False)
    except (UnicodeDecodeError, LookupError, ValueError, TypeError):
        return None


def _plausible(guess: str | None, data: bytes) -> bool:
    """A detector guess worth trying: a CJK/Unicode codec, UTF-16/32 only with NUL bytes."""
    if guess not in _CJK_OR_UNICODE:
        return False
    return not guess.startswith(("utf_16", "utf_32")) or b"\x00" in data


def _looks_utf8(data: bytes) -> bool:
    """Strictly valid UTF-8 with at least three multi-byte characters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(1 for c in text[:4096] if ord(c) > 0x7F) >= 3


def _detect(data: bytes, isolation: list[str] | None = None) -> str | None:
    """Charset-normalizer's best guess as a codec name, or None."""
    try:
        best = charset_normalizer.from_bytes(data[:_DETECT_LIMIT], cp_isolation=isolation).best()
    except Exception:  # the detector is third-party code running on hostile bytes
        return None
    return best.encoding if best is not None else None


def _replacement_count(data: bytes, codec: str) -> int:
    try:
        return data.decode(codec, errors="replace").count("\ufffd")
    except LookupError:
        return len(data)


def decode_bytes(data: bytes, label: str | None, *, short: bool = False) -> tuple[str, str | None]:
    """Decode ``data`` declared as ``label``; return (text, defect or None).

    ``short`` is for header fragments: detection is unreliable on a few bytes, so short text
    prefers UTF-8 then GB18030 (the overwhelmingly common charsets of this mailbox).
    """
    if not data:
        return "", None
    codec = codec_for(label)
    # ESC and NUL mean a 7-bit stateful (ISO-2022-JP) or UTF-16 text that merely looks like ASCII.
    if data.isascii() and b"\x00" not in data and (b"\x1b" not in data or not codec):
        return data.decode("ascii"), None
    if codec in _MULTIBYTE and _looks_utf8(data):
        # Multi-byte legacy text is practically never valid UTF-8 by chance, while clients that
        # keep a stale "gb2312" label over UTF-8 bytes are common.
        return data.decode("utf-8"), f"声明的字符集 {label} 与内容不符，按 utf-8 解码"
    if codec and codec not in _NEVER_FAILS:
        text = _strict(data, codec)
        if text is not None:
            return text, None
        # A label that is right except for a stray byte or two beats any guess.
        bad = _replacement_count(data, codec)
        if bad <= 2 and bad * 200 <= len(data):
            return data.decode(codec, errors="replace"), f"正文含无效字节（{label}）"
    candidates = _candidates(data, short)
    if codec in _NEVER_FAILS:
        # A Latin label over Latin text must survive: GB18030 would "decode" é+s as one
        # hanzi. Only UTF-8 or a detected CJK charset overrides a Latin label.
        detected = [_detect(data), _detect(data, list(_CHINESE))]
        candidates = ["utf-8"] + [d for d in detected if _plausible(d, data)]
    for candidate in candidates:
        text = _strict(data, candidate)
        if text is not None:
            return text, (f"声明的字符集 {label} 与内容不符，按 {candidate} 解码"
                          if label and codec != candidate else None)
    if codec in _NEVER_FAILS:
        return data.decode(codec), None
    fallback = codec or "utf-8"
    return data.decode(fallback, errors="replace"), f"无法确定字符集，按 {fallback} 解码，部分字符丢失"


def _candidates(data: bytes, short: bool) -> list[str]:
    """Codecs to try, in order, after the declared one failed or was missing.

    This mailbox is Chinese: on short or ambiguous text the detector confuses Big5 with
    Shift-JIS and GBK with EUC-KR, so the Chinese family is decided first (by detection restricted
    to it) and other CJK guesses only count when they are all that decodes.
    """
    if short:  # a few bytes: detection is noise, frequency of use decides
        return ["utf-8", "gb18030", "big5hkscs"]
    chinese = _detect(data, list(_CHINESE))
    anything = _detect(data)
    order = ["utf-8"]
    for guess in (chinese, anything if _plausible(anything, data) else None, "gb18030", anything):
        if guess and guess not in order:
            order.append(guess)
    return order
