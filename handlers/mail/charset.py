"""Bytes → Unicode for mail bodies and headers: declared charset first, then supersets, then detection.

Used by ``handlers.parse`` (the first pipeline step). Policy, as in Salmon's ``encoding.py`` and
Zulip's email gateway: no declared charset is trusted blindly. A declared label is mapped to the
superset Chinese mailers really mean (gb2312 → gb18030, big5 → big5hkscs, us-ascii → utf-8), tried
strictly, and on failure the bytes go through UTF-8, charset-normalizer and GB18030 before a
last-resort ``errors="replace"`` decode that keeps losses visible and records a defect. Where
two readings both decode (a Latin label or raw 8-bit bytes against GBK/Big5), the more plausible
one wins: see "plausibility" below.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from functools import lru_cache
from typing import TypeGuard

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

_WINDOWS_1252 = frozenset({codecs.lookup("latin-1").name, codecs.lookup("cp1252").name})

_MULTIBYTE = frozenset({"gb18030", "big5hkscs", "cp949", "cp932", "euc_jp", "euc_kr", "shift_jis"})

_CHINESE = ("utf_8", "gb18030", "big5hkscs")
_CJK_FAMILY = frozenset({"gb18030", "big5hkscs"})

# 7-bit encodings whose text is ASCII bytes that mean something else.
_ISO2022_JP = frozenset({"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004",
                         "iso2022_jp_3", "iso2022_jp_ext"})
_SEVEN_BIT = _ISO2022_JP | {"utf-7", "hz", "iso2022_kr"}

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


def _plausible(guess: str | None, data: bytes) -> TypeGuard[str]:
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
    # ESC and NUL mean a 7-bit stateful (ISO-2022-JP) or UTF-16 text that merely looks like ASCII;
    # UTF-7 and HZ are ASCII by design and must go through their codecs.
    if (data.isascii() and b"\x00" not in data and codec not in _SEVEN_BIT
            and (b"\x1b" not in data or not codec)):
        if not codec and b"~{" in data:
            return _hz_or_ascii(data)
        return data.decode("ascii"), None
    if codec in _MULTIBYTE and _looks_utf8(data):
        # Multi-byte legacy text is practically never valid UTF-8 by chance, while clients that
        # keep a stale "gb2312" label over UTF-8 bytes are common.
        return data.decode("utf-8"), f"声明的字符集 {label} 与内容不符，按 utf-8 解码"
    if codec in _NEVER_FAILS:
        return _latin_or_cjk(data, codec, label, short)
    if codec:
        text = _strict(data, codec)
        if text is not None:
            return text, None
        if codec in _ISO2022_JP:
            return _jis_extensions(data, label)
        # A label that is right except for a stray byte or two beats any guess, however short
        # the part (detection on a short part picks nonsense such as UTF-16 or cp1006).
        if _replacement_count(data, codec) <= 2:
            return data.decode(codec, errors="replace"), f"正文含无效字节（{label}），已用替换符标出"
    damaged = None if short else _damaged_utf8(data)
    if damaged is not None:
        return damaged, f"字符集{f' {label} ' if label else ''}无法确定，按 utf-8 解码，个别无效字节已用替换符标出"
    for candidate in _candidates(data, short, declared=bool(codec)):
        text = _strict(data, candidate)
        if text is None:
            continue
        if candidate in _CJK_FAMILY and _latin_wins(data, text):
            # Raw 8-bit Latin (a German filename, "Grüße") that merely decodes as GBK.
            return _latin(data), (f"声明的字符集 {label} 与内容不符，按 windows-1252 解码" if label
                                  else "未声明字符集，按西欧字符（windows-1252）解码")
        return text, (f"声明的字符集 {label} 与内容不符，按 {candidate} 解码"
                      if label and codec != candidate else None)
    fallback = codec or "utf-8"
    return data.decode(fallback, errors="replace"), f"无法确定字符集，按 {fallback} 解码，部分字符丢失"


# -- plausibility ---------------------------------------------------------------------------
# A Latin label never fails to decode and GB18030 decodes almost any pair of high bytes, so
# neither "it decodes" nor the label settles which reading the writer meant. Each reading is
# scored by how ordinary its non-ASCII characters are: for a CJK reading, the share that are
# common characters (GB2312 level 1, the 3,755 characters of everyday Chinese; Big5 level 1
# for traditional text; CJK punctuation, kana, KS X 1001 Hangul); for a Latin reading, the share
# of accented letters that sit inside a word of ASCII letters ("Grüße", "Hofjägeralle").
# German read as GBK gives rare characters (Gr晧e); Chinese read as Latin-1 gives runs of
# accented capitals and symbols with no ASCII letter near them (ÄÏÍ¨ÊÐ). A reading replaces
# the one it challenges only when it scores at least PLAUSIBLE and more than the other.
PLAUSIBLE = 0.6
_SCORE_CHARS = 2000  # a sample this long decides; scoring a whole 25 MB body would be waste


@lru_cache(maxsize=16384)
def _is_common(ch: str) -> bool:
    o = ord(ch)
    if 0x3000 <= o <= 0x30FF or 0xFF01 <= o <= 0xFF5E:  # CJK punctuation, kana, full-width
        return True
    if 0xAC00 <= o <= 0xD7A3:
        return _encodes(ch, "euc_kr")
    try:
        b = ch.encode("gb2312")
        return b[0] <= 0xA3 or 0xB0 <= b[0] <= 0xD7  # punctuation, full-width, level 1
    except UnicodeEncodeError:
        pass
    try:
        code = int.from_bytes(ch.encode("big5"), "big")
        return code < 0xA3C0 or 0xA440 <= code <= 0xC67E  # symbols, level 1
    except UnicodeEncodeError:
        return False


def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def cjk_score(text: str) -> float:
    """Share of the non-ASCII characters of ``text`` that are common CJK characters."""
    sample = [c for c in text[:_SCORE_CHARS] if ord(c) > 0x7F]
    return sum(map(_is_common, sample)) / len(sample) if sample else 0.0


def latin_score(text: str) -> float:
    """Share of the non-ASCII characters of ``text`` that a Latin writer plausibly typed."""
    text = text[:_SCORE_CHARS]
    total = ok = 0
    for i, ch in enumerate(text):
        if ord(ch) < 0x80:
            continue
        total += 1
        left = text[i - 1] if i else " "
        right = text[i + 1] if i + 1 < len(text) else " "
        if ch.isalpha():
            # Inside a word of ASCII letters, or a word of its own ("à Paris").
            ok += (_ascii_letter(left) or _ascii_letter(right)
                   or (left.isascii() and right.isascii()))
        elif unicodedata.category(ch)[0] in "PSNZ":  # "20 °C", "« oui »", "5 €"
            ok += left.isascii() and right.isascii()
    return ok / total if total else 0.0


def _ascii_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _latin(data: bytes) -> str:
    """The Windows-1252 reading (what "Latin-1" mailers write), Latin-1 where 1252 has holes."""
    text = _strict(data, "cp1252")
    return text if text is not None else data.decode("latin-1")


def _latin_wins(data: bytes, cjk_text: str) -> bool:
    """True when undeclared 8-bit bytes read better as Western European than as CJK."""
    latin = latin_score(_latin(data))
    return latin >= PLAUSIBLE and latin > cjk_score(cjk_text)


def _latin_or_cjk(data: bytes, codec: str, label: str | None,
                  short: bool) -> tuple[str, str | None]:
    """A Latin label: kept unless UTF-8 or a more plausible CJK reading shows it is wrong."""
    utf8 = _strict(data, "utf-8")
    if utf8 is not None:
        return utf8, f"声明的字符集 {label} 与内容不符，按 utf-8 解码"
    # WHATWG Encoding: a "latin-1" label means windows-1252 (mailers put “ ” – € in 0x80-0x9F).
    declared = (_latin(data) if codec in _WINDOWS_1252 else
                data.decode(codec, errors="replace"))
    latin = latin_score(declared)
    # Detection on a few bytes is noise (GBK subjects come out Korean): short text tries the
    # Chinese family only, as _candidates does.
    detected = (["gb18030", "big5hkscs"] if short
                else [_detect(data, list(_CHINESE)), _detect(data), "gb18030"])
    for candidate in dict.fromkeys(d for d in detected if _plausible(d, data)):
        text = _strict(data, candidate)
        if text is None:
            continue
        cjk = cjk_score(text)
        if cjk >= PLAUSIBLE and cjk > latin:
            return text, f"声明的字符集 {label} 与内容不符，按 {candidate} 解码"
    return declared, None


def _damaged_utf8(data: bytes) -> str | None:
    """UTF-8 with a few invalid bytes (a cut, a stray byte): better than any single-byte guess."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for c in text if ord(c) > 0x7F) - bad
    return text if bad > 0 and good >= 3 and bad * 3 <= good else None


def _hz_or_ascii(data: bytes) -> tuple[str, str | None]:
    """Undeclared ASCII with ``~{``: HZ-GB-2312 (RFC 1843) when its reading is Chinese."""
    text = _strict(data, "hz")
    if text is not None and text != data.decode("ascii") and cjk_score(text) >= PLAUSIBLE:
        return text, "未声明字符集，按 HZ-GB-2312 解码"
    return data.decode("ascii"), None


def _jis_extensions(data: bytes, label: str | None) -> tuple[str, str | None]:
    """ISO-2022-JP that the strict codec refused: Shift_JIS bytes under the label, or the
    Microsoft extensions (NEC row 13: ①, ㈱, №) that Windows mailers write as CP50220."""
    if not data.isascii():
        text = _strict(data, "cp932")
        if text is not None:
            return text, f"声明的字符集 {label} 与内容不符，按 shift_jis 解码"
    text = _jis_to_sjis(data).decode("cp932", errors="replace")
    return text, (f"正文含无效字节（{label}），已用替换符标出" if "\ufffd" in text else None)


# Hand-written: Python has no CP50220 codec, and its iso2022_jp codecs reject the NEC and IBM
# rows that Windows puts in the same code space. JIS X 0208 row/cell maps arithmetically onto
# Shift_JIS (JIS X 0208 appendix 1), and cp932 decodes every extension row.
_JIS_ESC = re.compile(rb"\x1b(\$[@B]|\$\(D|\([BJHI])")


def _jis_to_sjis(data: bytes) -> bytes:
    out = bytearray()
    mode = b"(B"
    for i, chunk in enumerate(_JIS_ESC.split(data)):
        if i % 2:
            mode = chunk
            continue
        if mode in (b"$@", b"$B", b"$(D"):
            for j in range(0, len(chunk) - 1, 2):
                out += _sjis_pair(chunk[j] & 0x7F, chunk[j + 1] & 0x7F)
        elif mode == b"(I":  # JIS X 0201 katakana: half-width kana in Shift_JIS
            out += bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in chunk)
        else:
            out += chunk
    return bytes(out)


def _sjis_pair(j1: int, j2: int) -> bytes:
    if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
        return b"?"
    s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = j2 + (0x1F + (j2 >= 0x60) if j1 % 2 else 0x7E)
    return bytes((s1, s2))


def _candidates(data: bytes, short: bool, declared: bool = False) -> list[str]:
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
    # A detector's single-byte guess (cp1006, mac_cyrillic …) never beats a declared label.
    last = None if declared else anything
    for guess in (chinese, anything if _plausible(anything, data) else None, "gb18030", last):
        if guess and guess not in order:
            order.append(guess)
    return order
