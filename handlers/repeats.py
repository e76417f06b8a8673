"""Repeat letters (并单): which open cases a new letter repeats, by its sender or by its content.

Chinese petition practice merges repeats; this module finds them, it does not merge. Two kinds of
link (issue #20, part 1):

(a) **the same sender**: a citizen who writes twice, or writes and then phones, is the same person
    when the normalised e-mail address or the normalised phone number is the same. Addresses are
    folded only where the provider itself ignores a difference (case everywhere; Gmail's dots and
    ``+tags``; Outlook.com's ``+tags``). NetEase (163.com, 126.com, yeah.net) and QQ Mail ignore
    neither: their user names cannot hold "+", and ``zhang.wei@163.com`` and ``zhangwei@163.com``
    are two mailboxes of two people, so there only the case is folded. Phones are folded to one
    spelling: full-width digits, spaces, dashes and brackets, +86 / 0086, a mobile's 11 digits, a
    landline's area code and number, an extension dropped.
(b) **the same event, written by someone else**: character n-gram shingles of the letter's own
    words, estimated with MinHash and found through LSH banding (datasketch's "affine64" MinHash
    and band layout, computed with numpy: see the index's section), then re-checked
    with the exact Jaccard similarity of the shingle sets. The words compared are the letter's
    own: quoted replies (``handlers.mail.text.split_reply``), greetings, closings and the
    formulas staff type for a phone call are dropped, any passage the letter quotes from the
    published report is cut out (two letters quoting the same measure are not the same matter),
    and every digit run is one mask character (phone numbers, dates and amounts must not make
    letters look alike).

Pure: no socket, no SQL. ``storage.repeats`` reads what the index is built from (the open cases
of the look-back window) and finds a sender's open cases by the keys computed here; the service
builds one :class:`RepeatIndex` and keeps it current with :meth:`RepeatIndex.insert` and
:meth:`RepeatIndex.remove`. Tuned on ``tests/data/repeat_pairs.jsonl``
(``handlers.repeats_eval``); the defaults below are the tuned ones.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import re
import threading
import unicodedata
import zlib
from array import array
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import idna
import numpy as np

# The text helpers (lxml, OpenCC) and the classifier's corpus are imported where they are used:
# the settings import this module for its defaults and must not pay a second for them.

# Tuned on the tuning half of tests/data/repeat_pairs.jsonl (see handlers/repeats_eval.py).
DEFAULT_THRESHOLD = 0.07
DEFAULT_NUM_PERM = 128
DEFAULT_NGRAM = 2
DEFAULT_WINDOW_DAYS = 90
MAX_EXAMINED = 200  # candidates checked exactly per query (RepeatIndex.query)
# An n-gram found in this share of the project's letters (the classifier's shipped corpus) says
# "a letter about this report" (派出所, 法院, 希望, 反映), not "this matter": it is not compared.
COMMON_SHARE = 0.01

# --- (a) senders --------------------------------------------------------------------------------

# Providers that document ignoring part of the local part: (drop dots, drop a +tag). Every other
# domain, NetEase's and QQ's included, is compared as written, case aside.
_LOCAL_RULES: dict[str, tuple[bool, bool]] = {
    "gmail.com": (True, True),
    "outlook.com": (False, True), "hotmail.com": (False, True), "live.com": (False, True),
}
_SAME_DOMAIN = {"googlemail.com": "gmail.com"}


_SPACE = re.compile(r"\s")  # str.isspace(), as the re module defines \s


@lru_cache(maxsize=4096)
def _a_label(domain: str) -> str:
    """An IDN's A-label, however it was typed (the domain itself if idna refuses it). Kept for
    the few domains citizens write from: idna's UTS 46 mapping was a third of a key's CPU."""
    with contextlib.suppress(idna.IDNAError):
        return idna.encode(domain, uts46=True).decode("ascii")
    return domain


def address_key(value: str | None) -> str | None:
    """One spelling of an e-mail address for every way the same mailbox is written; None when
    ``value`` holds no usable address. ``"Zhou <Zhou.Lixin@163.COM>"`` → ``zhou.lixin@163.com``."""
    if not value:
        return None
    text = unicodedata.normalize("NFKC", value).strip()  # full-width ＠ and letters typed on a form
    addr = parseaddr(text)[1] if "<" in text else text
    if addr.count("@") != 1 or _SPACE.search(addr):
        return None
    local, domain = addr.rsplit("@", 1)
    domain = domain.strip().rstrip(".").lower()
    if not local or not domain or "." not in domain:
        return None
    domain = _a_label(domain)
    domain = _SAME_DOMAIN.get(domain, domain)
    # Local parts are case-sensitive in RFC 5321 §2.4, but no public provider treats them so.
    local = local.lower()
    drop_dots, drop_tag = _LOCAL_RULES.get(domain, (False, False))
    if drop_tag:
        local = local.split("+", 1)[0]
    if drop_dots:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


_PHONE_SEP = re.compile(r"[\s\-.()（）—–_/]+")
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x|#).*$", re.IGNORECASE)
_MOBILE = re.compile(r"1[3-9]\d{9}")
# 0 + area code (2–3 digits: 010, 025, 0513) + a 7–8 digit number.
_LANDLINE = re.compile(r"0[1-9]\d{8,10}")
_LOCAL = re.compile(r"[2-9]\d{6,7}")


def phone_key(value: str | None, default_area: str = "") -> str | None:
    """One spelling of a phone number: a mobile's 11 digits, a landline's area code and number
    (``0513-8509 8289``, ``(0513)85098289`` and ``+86 513 85098289`` → ``051385098289``), a
    foreign number as ``+`` and its digits. A number without area code gets ``default_area``
    when one is given (the commission's own city), else stays as typed. None: not a phone."""
    if not value:
        return None
    text = _EXTENSION.sub("", unicodedata.normalize("NFKC", value).strip())
    text = _PHONE_SEP.sub("", text)
    plus = text.startswith("+")
    digits = text.lstrip("+")
    if not digits.isdigit() or not digits.isascii():
        return None
    if plus or digits.startswith("00"):
        digits = digits.removeprefix("00")
        if not digits.startswith("86"):
            return f"+{digits}" if 8 <= len(digits) <= 15 else None
        national = digits[2:]
        return national if _MOBILE.fullmatch(national) else _trunk(national)
    if len(digits) == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        return digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    if _LOCAL.fullmatch(digits):
        return default_area + digits if default_area else digits
    return None


def _trunk(national: str) -> str | None:
    """A landline written internationally (+86 513 …) takes its trunk 0 back."""
    return "0" + national if _LANDLINE.fullmatch("0" + national) else None


@dataclass(frozen=True)
class SenderKeys:
    """What identifies a letter's writer across channels (``storage.repeats`` stores both)."""

    address: str | None
    phone: str | None

    def shares(self, other: SenderKeys) -> bool:
        return bool((self.address and self.address == other.address)
                    or (self.phone and self.phone == other.phone))


def sender_keys(from_addr: str | None, phone: str | None, default_area: str = "") -> SenderKeys:
    return SenderKeys(address_key(from_addr), phone_key(phone, default_area))


# --- (b) the letter's own words -----------------------------------------------------------------

# Formulas that open and close letters, and that staff type for a phone call: shared by letters
# about anything, so they are not evidence of the same matter.
_FORMULAS = re.compile(
    r"尊敬的[^，,：:！!。\n]{0,12}[，,：:！!]|(?:各位)?(?:领导|同志)?(?:您|你|你们)好[！!，,。：:]?"
    r"|此致|敬礼[！!。]?|谢谢[您你]?(?:们)?[！!。]?|(?:非常)?感谢[您你]?(?:们)?[！!。]?"
    r"|来电(?:人)?(?:反映|称|表示)[：:，,]?|本人反映[：:，,]?|反映(?:一下)?[：:]"
    r"|(?:市民|居民|群众|村民)\s*[\u4e00-\u9fff]{1,3}(?:先生|女士)?\s*$")
_DIGITS = re.compile(r"\d+")
_LATIN_WORD = re.compile(r"[a-z]+")
# A Latin word becomes one character of the Unicode private use area (U+E000–U+F8FF), so that
# the n-grams of an English letter are word n-grams: letter pairs ("th", "er") are shared by
# every English text and would make any two of them look alike.
_PUA, _PUA_SIZE = 0xE000, 6400
_NOT_WORD = re.compile(r"[\W_]+")
# A run this long found word for word in the report is the report, quoted.
_QUOTE_RUN = 8
_MASK = "#"
_PRIME = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime: an odd multiplier for the n-gram hash


def own_words(subject: str, text: str) -> str:
    """The letter's own words as the matcher compares them (before the report is cut out):
    quoted history, greetings, closings and phone-entry formulas dropped, NFKC, simplified,
    lower case, URLs and addresses gone, punctuation and spaces removed, digit runs masked."""
    from handlers.classify.text import clean as clean_text
    from handlers.mail.text import split_reply

    body = split_reply(text or "")
    clean = clean_text(f"{subject or ''}\n{body}")
    clean = _NOT_WORD.sub(" ", _FORMULAS.sub(" ", clean))
    clean = _LATIN_WORD.sub(_word_char, clean).replace(" ", "")
    return _DIGITS.sub(_MASK, clean)


def _word_char(match: re.Match[str]) -> str:
    return chr(_PUA + zlib.crc32(match.group().encode()) % _PUA_SIZE)


def run_keys(codes: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit key for every n-character run of ``codes`` (a polynomial hash; uint64 wraps).

    ``handlers.classify.ngrams.pack`` keys runs exactly but only up to three characters."""
    length = len(codes) - n + 1
    if length <= 0:
        return np.empty(0, dtype=np.uint64)
    key = np.zeros(length, dtype=np.uint64)
    for k in range(n):
        key = key * _PRIME + codes[k:k + length]
    return key


def member_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Which of ``keys`` are in the sorted array ``sorted_keys`` (a binary search each: np.isin
    sorts both arrays on every call, a millisecond against the report's runs)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


class Shingler:
    """Character n-gram shingles of a letter's own words, without what it quotes of the report,
    and their MinHash (:meth:`sign`: a prepare process signs letters whole, numpy alone)."""

    def __init__(self, ngram: int = DEFAULT_NGRAM, report_text: str = "",
                 common: np.ndarray | None = None, num_perm: int = DEFAULT_NUM_PERM) -> None:
        if ngram < 1:
            raise ValueError("ngram must be at least 1")
        self.ngram = ngram
        self.num_perm = num_perm
        report = own_words("", report_text) if report_text else ""
        self._report_runs = np.unique(run_keys(_codes(report), _QUOTE_RUN))
        self._common = np.empty(0, dtype=np.uint64) if common is None else common

    def words(self, subject: str, text: str) -> str:
        """:func:`own_words` with every passage quoted from the report cut out."""
        words = own_words(subject, text)
        if not len(self._report_runs) or len(words) < _QUOTE_RUN:
            return words
        starts = np.flatnonzero(member_sorted(run_keys(_codes(words), _QUOTE_RUN), self._report_runs))
        if not len(starts):
            return words
        quoted = np.zeros(len(words), dtype=np.int32)
        np.add.at(quoted, starts, 1)
        np.add.at(quoted, starts[starts + _QUOTE_RUN < len(words)] + _QUOTE_RUN, -1)
        keep = np.cumsum(quoted) == 0
        # A cut joins the words on each side; the mask keeps them from forming a shingle.
        return "".join(c if k else _MASK for c, k in zip(words, keep, strict=True))

    def shingles(self, subject: str, text: str) -> np.ndarray:
        """Sorted unique 64-bit keys of the letter's n-grams; none spans a mask (a digit run or a
        cut-out quotation): the mask separates, it is not a word."""
        words = self.words(subject, text)
        codes = _codes(words)
        keys = run_keys(codes, self.ngram)
        if len(keys) and _MASK in words:
            masked = codes == ord(_MASK)
            spans_mask = np.zeros(len(keys), dtype=bool)
            for k in range(self.ngram):
                spans_mask |= masked[k:k + len(keys)]
            keys = keys[~spans_mask]
        keys = np.unique(keys)
        return keys[~member_sorted(keys, self._common)] if len(self._common) else keys

    def sign(self, subject: str, text: str) -> Signature:
        """The letter's shingles and their MinHash values."""
        shingles = self.shingles(subject, text)
        return Signature(shingles, minhash(shingles, self.num_perm))


def common_shingles(shingler: Shingler, letters: list[tuple[str, str]],
                    share: float = COMMON_SHARE) -> np.ndarray:
    """Keys of the n-grams found in at least ``share`` of ``letters`` (subject, text)."""
    if not letters:
        return np.empty(0, dtype=np.uint64)
    keys, counts = np.unique(np.concatenate([shingler.shingles(s, t) for s, t in letters]),
                             return_counts=True)
    return keys[counts >= max(2, share * len(letters))]


@lru_cache(maxsize=4)
def shipped_common(ngram: int) -> np.ndarray:
    """:func:`common_shingles` of the classifier's shipped letters (corpus and dev set)."""
    from handlers.classify.store import shipped_examples

    letters = [(e.get("subject") or "", e.get("body") or "") for e in shipped_examples()]
    return common_shingles(Shingler(ngram), letters)


def load_report_text(path: Path | None = None) -> str:
    """The published report's text (the configured file, else the shipped copy)."""
    from handlers.classify.taxonomy import SHIPPED_REPORT

    return (path or SHIPPED_REPORT).read_bytes().decode("utf-8-sig")


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique key arrays."""
    if not len(a) or not len(b):
        return 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


# --- the index ----------------------------------------------------------------------------------
#
# The MinHash and the LSH band layout are datasketch's ("affine64" permutations of its default
# seed; MinHashLSH's choice of bands for a threshold and weights), computed here with numpy:
# importing datasketch loads scipy (56 MB in every process that holds an index, for one
# integral), and its MinHash objects cost a kilobyte and a half each beside the 1 KB of values.
# tests/handlers/test_repeat_sketch.py checks both against datasketch, bit for bit.

_SEED = 1  # datasketch's default seed: the permutations it draws from it
_LSH_WEIGHTS = (0.2, 0.8)  # false positives, false negatives: recall before precision
_MAX_U64 = np.iinfo(np.uint64).max
_FMIX = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(33),
         np.uint64(0xC4CEB9FE1A85EC53), np.uint64(33))  # MurmurHash3's 64-bit finalizer
_SIGN_ROWS = 1024  # shingles per step of minhash(): bounds the temporary (rows × num_perm)


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The affine permutations h → a·h + b (mod 2^64, a odd) datasketch draws for its seed."""
    gen = np.random.RandomState(_SEED)
    a = gen.randint(0, 1 << 63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = gen.randint(0, 1 << 64, num_perm, dtype=np.uint64)
    return a, b


def minhash(shingles: np.ndarray, num_perm: int = DEFAULT_NUM_PERM) -> np.ndarray:
    """The MinHash values of a set of 64-bit keys (datasketch's ``MinHash(scheme="affine64",
    hashfunc=int).update_batch(keys)``.hashvalues): the keys pre-mixed with MurmurHash3's
    finalizer, then each permutation's minimum. All ones (the empty sketch) for no keys."""
    a, b = _permutations(num_perm)
    out = np.full(num_perm, _MAX_U64, dtype=np.uint64)
    s1, m1, s2, m2, s3 = _FMIX
    for start in range(0, len(shingles), _SIGN_ROWS):
        hv = shingles[start:start + _SIGN_ROWS].astype(np.uint64, copy=False)
        hv = hv ^ (hv >> s1)
        hv = hv * m1
        hv = hv ^ (hv >> s2)
        hv = hv * m2
        hv = hv ^ (hv >> s3)
        np.minimum(out, (np.multiply.outer(hv, a) + b).min(axis=0), out=out)
    return out


@lru_cache(maxsize=16)
def band_layout(threshold: float, num_perm: int,
                weights: tuple[float, float] = _LSH_WEIGHTS) -> tuple[int, int]:
    """(bands, rows per band) with the least weighted false positive and negative areas, as
    datasketch's ``MinHashLSH`` chooses them (the first minimum, bands then rows ascending).
    Both integrands are polynomials of degree ≤ ``num_perm``: Gauss–Legendre with
    ``num_perm // 2 + 1`` nodes integrates them exactly (datasketch asks scipy's ``quad``)."""
    nodes, node_weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below = threshold / 2 * (nodes + 1)  # the nodes mapped to [0, threshold] and [threshold, 1]
    above = threshold + (1 - threshold) / 2 * (nodes + 1)
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    bands = np.array([p[0] for p in pairs], dtype=float)[:, None]
    rows = np.array([p[1] for p in pairs], dtype=float)[:, None]
    false_pos = (1 - (1 - below ** rows) ** bands) @ node_weights * (threshold / 2)
    false_neg = ((1 - above ** rows) ** bands) @ node_weights * ((1 - threshold) / 2)
    error = false_pos * weights[0] + false_neg * weights[1]
    return pairs[int(np.argmin(error))]


@dataclass(frozen=True)
class Signature:
    """What the index needs of one letter: its shingles (sorted unique 64-bit keys) and their
    MinHash values (picklable, so a prepare process can compute it)."""

    shingles: np.ndarray
    hashvalues: np.ndarray


class Match(NamedTuple):
    """An open case a letter may repeat: its id, the MinHash estimate and the exact Jaccard."""

    case_id: int
    estimate: float
    jaccard: float


class _Text:
    """One distinct set of shingles and its MinHash values, shared by every case that has it:
    letters of a campaign are often word for word the same once digits are masked."""

    __slots__ = ("hashvalues", "holders", "shingles")

    def __init__(self, signature: Signature) -> None:
        self.shingles = signature.shingles
        self.hashvalues = signature.hashvalues
        self.holders = 0


class _Bands:
    """LSH banding whose buckets keep their case ids sorted, for "the newest candidates" queries.

    Written here rather than taken from datasketch's ``MinHashLSH``, whose band layout it uses
    (:func:`band_layout`): its ``query`` returns every key of every matching bucket, gathered
    one by one in a Python loop, and the index only checks the newest :data:`MAX_EXAMINED` of
    them. When hundreds of letters about one event share every bucket, that loop cost
    40 × (open cases) steps a letter, and the filing of a campaign grew quadratic. With sorted
    buckets a query reads the tail of each: the newest ``limit`` of the union are among the
    newest ``limit`` of some bucket, so the result is the same. A bucket of two or more is an
    ``array('q')`` (8 bytes an entry, its tail copied out as bytes by a query); a bucket of one
    is the case id itself. Letters that are not part of a campaign share few band values, so
    most buckets hold one case: as arrays they were 3.2 of the 5.2 KB an open case cost (40
    array objects), as ids they cost nothing beyond the key (the id object is the case's own).
    A case's band keys are not kept, they are cut again from its MinHash values when it is
    taken out."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        bands, rows = band_layout(threshold, num_perm)
        self._bands, self._rows = bands, rows
        self._ranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
        self._buckets: list[dict[int | bytes, array[int] | int]] = [{} for _ in self._ranges]

    def _band_keys(self, hashvalues: np.ndarray) -> list[int | bytes]:
        if self._rows == 1:  # the tuned layout (40 bands of one value): the values are the keys
            return hashvalues[:self._bands].tolist()
        return [hashvalues[start:end].tobytes() for start, end in self._ranges]

    def insert(self, case_id: int, hashvalues: np.ndarray) -> None:
        for key, buckets in zip(self._band_keys(hashvalues), self._buckets, strict=True):
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = case_id
            elif not isinstance(bucket, array):  # a bucket of one becomes an array of two
                buckets[key] = array("q", sorted((bucket, case_id)))
            elif bucket[-1] < case_id:  # the usual case: a new letter has the largest id
                bucket.append(case_id)
            else:
                bisect.insort(bucket, case_id)

    def remove(self, case_id: int, hashvalues: np.ndarray) -> None:
        for key, buckets in zip(self._band_keys(hashvalues), self._buckets, strict=True):
            bucket = buckets[key]
            if not isinstance(bucket, array):
                del buckets[key]
                continue
            del bucket[bisect.bisect_left(bucket, case_id)]
            if len(bucket) == 1:
                buckets[key] = bucket[0]

    def newest(self, hashvalues: np.ndarray, limit: int) -> np.ndarray:
        """The ``limit`` largest ids sharing a band with ``hashvalues``, largest first."""
        parts: list[memoryview | array[int]] = []
        single: list[int] = []
        for key, buckets in zip(self._band_keys(hashvalues), self._buckets, strict=True):
            bucket = buckets.get(key)
            if bucket is None:
                continue
            if isinstance(bucket, array):
                parts.append(memoryview(bucket)[-limit:])
            else:
                single.append(bucket)
        if single:
            parts.append(array("q", single))
        # Joined as bytes (a quarter of the cost of a numpy view per bucket), so no view of a
        # bucket outlives the call: a bucket whose buffer is exported cannot grow.
        tails = b"".join(parts)
        if not tails:
            return np.empty(0, dtype=np.int64)
        return _largest_distinct(np.frombuffer(tails, dtype=np.int64), limit)


def _largest_distinct(ids: np.ndarray, limit: int) -> np.ndarray:
    """The ``limit`` largest distinct values of ``ids``, largest first. The candidates of a
    query are ids of recent letters, close together: marked in a table over their range they
    come out sorted and distinct in one pass, where sorting them (np.unique) cost 0.2–0.3 ms
    for the 8,000 a campaign's letter gathers."""
    low, high = int(ids.min()), int(ids.max())
    if high - low <= 8 * len(ids) + 4096:
        seen = np.zeros(high - low + 1, dtype=bool)
        seen[ids - low] = True
        return np.flatnonzero(seen)[::-1][:limit] + low
    ids = np.sort(ids)[::-1]
    return ids[np.concatenate(([True], ids[1:] != ids[:-1]))][:limit]


class RepeatIndex:
    """The open cases of the look-back window, for near-duplicate queries (in memory).

    LSH (banding) is set up to favour recall below ``threshold``; every candidate is then
    re-checked on its exact shingle sets, so precision does not depend on the banding. A case
    costs its bands' entries (8 bytes each) and its bookkeeping; its shingles and MinHash
    values are kept once per distinct text (:class:`_Text`), as numpy arrays."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, num_perm: int = DEFAULT_NUM_PERM,
                 ngram: int = DEFAULT_NGRAM, report_text: str = "",
                 common: np.ndarray | None = None) -> None:
        """``common``: n-grams left out of every comparison; None: :func:`shipped_common`."""
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingler = Shingler(ngram, report_text,
                                 shipped_common(ngram) if common is None else common, num_perm)
        self._bands = _Bands(threshold, num_perm)
        self._cases: dict[int, _Text] = {}
        self._distinct: dict[bytes, _Text] = {}  # key: the sorted shingles' bytes
        # (received_at, case id) of the indexed cases, oldest first, for prune(); an entry
        # whose case was removed or re-inserted since is skipped there.
        self._received: dict[int, datetime] = {}
        self._by_age: list[tuple[datetime, int]] = []
        # The service files letters in its database thread while staff's actions take cases
        # out and put them back from the event loop's: one at a time.
        self._lock = threading.RLock()

    def sign(self, subject: str, text: str) -> Signature:
        """The letter's signature: its shingles (:attr:`shingler`) and their MinHash."""
        return self.shingler.sign(subject, text)

    def insert(self, case_id: int, signature: Signature,
               received_at: datetime | None = None) -> None:
        """Add (or replace) a case; a letter with no words of its own is not indexed (and an
        earlier entry under the same id is gone). ``received_at``: when it leaves the window
        (:meth:`prune`); None: never by age."""
        with self._lock:
            self.remove(case_id)
            if len(signature.shingles):
                key = signature.shingles.tobytes()
                text = self._distinct.get(key)
                if text is None:
                    text = self._distinct[key] = _Text(signature)
                text.holders += 1
                self._cases[case_id] = text
                self._bands.insert(case_id, text.hashvalues)
                if received_at is not None:
                    self._received[case_id] = received_at
                    heapq.heappush(self._by_age, (received_at, case_id))

    def remove(self, case_id: int) -> None:
        """Take a case out (closed, merged, purged, or past the window)."""
        with self._lock:
            text = self._cases.pop(case_id, None)
            if text is not None:
                self._bands.remove(case_id, text.hashvalues)
                self._received.pop(case_id, None)
                text.holders -= 1
                if not text.holders:
                    del self._distinct[text.shingles.tobytes()]

    def prune(self, before: datetime) -> int:
        """Take out the cases received before ``before`` (past the look-back window); how
        many. Cheap when nothing is due: the oldest entry is looked at first."""
        with self._lock:
            gone = 0
            while self._by_age and self._by_age[0][0] < before:
                at, case_id = heapq.heappop(self._by_age)
                if self._received.get(case_id) == at:
                    self.remove(case_id)
                    gone += 1
            return gone

    def __contains__(self, case_id: int) -> bool:
        return case_id in self._cases

    def __len__(self) -> int:
        return len(self._cases)

    def query(self, signature: Signature, exclude: int | None = None) -> list[Match]:
        """Indexed cases whose exact Jaccard with ``signature`` reaches the threshold, most
        similar first. At most :data:`MAX_EXAMINED` candidates are checked, the newest cases
        first: when hundreds write about one event, LSH hands over every one of their letters,
        and checking them all made filing quadratic (a campaign of alike letters was filed at
        some 15 a second); a letter is linked to a handful of them anyway."""
        ids, estimates, jaccards = self.ranked(signature, exclude)
        make = tuple.__new__  # Match(*row) without its argument parsing: 200 a campaign letter
        return [make(Match, row) for row in zip(ids.tolist(), estimates.tolist(),
                                                jaccards.tolist(), strict=True)]

    def ranked(self, signature: Signature, exclude: int | None = None, *,
               estimates: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`query` as arrays (case ids, MinHash estimates, exact Jaccards), for a caller
        that reads a few of them (the store step links a letter to its 10 most similar). Each
        distinct text among the candidates is checked once, all of them in one pass.
        ``estimates=False``: the estimates array is empty (the store step reads the exact
        Jaccards only; the estimates were a third of the checking)."""
        none = np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        mine = signature.shingles
        if not len(mine):
            return none
        with self._lock:
            ids = self._bands.newest(signature.hashvalues, MAX_EXAMINED)
            if exclude is not None:
                ids = ids[ids != exclude]
            if not len(ids):
                return none
            held = list(map(self._cases.__getitem__, ids.tolist()))
            slots = {text: n for n, text in enumerate(dict.fromkeys(held))}
            owner = np.fromiter(map(slots.__getitem__, held), dtype=np.intp, count=len(held))
            texts = list(slots)
            exact = self._exact(signature, texts)
            estimate = self._estimates(signature, texts) if estimates else None
        jaccards = exact[owner]
        keep = np.flatnonzero(jaccards >= self.threshold)
        order = keep[np.lexsort((ids[keep], -jaccards[keep]))]
        found = estimate[owner][order] if estimate is not None else np.empty(0)
        return ids[order], found, jaccards[order]

    def _exact(self, signature: Signature, texts: list[_Text]) -> np.ndarray:
        """The exact Jaccard of ``signature`` against each of ``texts``."""
        mine = signature.shingles
        sizes = np.fromiter((len(t.shingles) for t in texts), dtype=np.int64, count=len(texts))
        theirs = (texts[0].shingles if len(texts) == 1
                  else np.concatenate([t.shingles for t in texts]))
        starts = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        common = np.add.reduceat(member_sorted(theirs, mine), starts).astype(np.int64)
        return common / (len(mine) + sizes - common)

    def _estimates(self, signature: Signature, texts: list[_Text]) -> np.ndarray:
        """The MinHash estimate of the Jaccard of ``signature`` against each of ``texts``."""
        values = np.stack([t.hashvalues for t in texts])
        return np.count_nonzero(values == signature.hashvalues, axis=1) / self.num_perm
