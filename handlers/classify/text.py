"""Text normalisation and segmentation for the classifier.

Every message and every training example passes through ``Normaliser`` before feature
extraction: traditional characters are folded to simplified (OpenCC), full-width forms are
folded (NFKC), English words gain Chinese keywords from a small map, and jieba segments the
result. Segmentation uses rjieba, the Rust port of jieba (same algorithm and dictionary):
pure-Python jieba needs ~0.4 ms for a 300-character message, which alone would use up the
2,000 messages/s budget; rjieba needs ~0.02 ms. Pure-Python jieba is the fallback where no
rjieba wheel exists. The output is a pair (normalised text for character n-grams, space-joined words for
word n-grams), so the feature extractors in ``model.py`` stay plain scikit-learn vectorisers.

The English stop words are scikit-learn's list, but they are handed in (by the Classifier,
which has scikit-learn loaded, or by the Scorer, which saved them in its file) rather than
imported here: importing that list loads all of scikit-learn, which the service's scoring
process must not carry.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import re
import sys
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any

from opencc import OpenCC

from .firstchar import FirstCharPattern

# English words citizens mix in → Chinese keywords the taxonomy and corpus use. Short on
# purpose: it only has to carry an English message to the right neighbourhood.
EN_ZH: dict[str, str] = {
    "police": "警察 公安",
    "policeman": "警察",
    "officer": "民警 干部",
    "cop": "警察",
    "station": "派出所",
    "court": "法院",
    "judge": "法官",
    "judges": "法官",
    "trial": "审判",
    "case": "案件",
    "cases": "案件",
    "lawsuit": "诉讼 起诉",
    "lawyer": "律师",
    "lawyers": "律师",
    "attorney": "律师",
    "legal": "法律",
    "law": "法律",
    # A foreign resident's own errands are not 涉外 legal services (measure 1.11): glossing
    # "foreign" as 涉外 filed a foreigner's hospital, divorce or fraud letter under category 1.
    "foreign": "外籍",
    "foreigner": "外籍",
    "foreigners": "外籍",
    "prosecutor": "检察院",
    "procuratorate": "检察院",
    "corruption": "腐败 廉政",
    "corrupt": "腐败",
    "bribe": "受贿 行贿",
    "bribery": "受贿",
    "gift": "送礼",
    "gifts": "送礼",
    "banquet": "吃请 宴请",
    "fraud": "诈骗",
    "scam": "诈骗",
    "telecom": "电信",
    "cctv": "监控 雪亮工程",
    "camera": "监控 摄像头",
    "cameras": "监控 摄像头",
    "surveillance": "监控 雪亮工程",
    "security": "安防 安全",
    "school": "学校",
    "petition": "信访",
    "petitions": "信访",
    "complaint": "投诉",
    "gang": "黑恶 扫黑除恶",
    "gangs": "黑恶 扫黑除恶",
    "mafia": "黑恶 扫黑除恶",
    "enforcement": "执行",
    "judgment": "判决 执行",
    "cult": "邪教",
    "budget": "预算 经费",
    "funds": "经费",
    "money": "钱 经费",
    "assets": "资产",
    "union": "工会",
    "party": "党",
    "training": "培训",
    "online": "网上 网上办",
    "website": "网站",
    "wechat": "微信",
    "weibo": "微博",
    "video": "视频",
    "media": "媒体 宣传",
    "traffic": "交通",
    "accident": "事故",
    "window": "窗口",
    "slow": "慢 拖延",
    "delay": "拖延",
    "thanks": "感谢",
    "thank": "感谢",
    "great": "点赞",
    "praise": "表扬",
    "suggest": "建议",
    "suggestion": "建议",
    "recommend": "建议",
    "question": "请问",
    "how": "请问 怎么",
    "where": "请问 哪里",
    "when": "请问 什么时候",
    "why": "为什么",
    "report": "举报",
    "investment": "投资",
    "loan": "贷款",
    "invoice": "发票",
    "discount": "优惠",
    "free": "免费",  # not 免费领取, a spam cue: "free legal aid" is what a citizen asks for
    "click": "点击链接",
    "unsubscribe": "退订",
    "casino": "博彩",
    "bitcoin": "虚拟货币",
    "crypto": "虚拟货币",
    "seo": "推广",
    "guaranteed": "稳赚",
    "offer": "优惠",
    "winner": "中奖",
    "prize": "奖品",
    # The errands and troubles of foreign residents: without these an English question about a
    # permit had only English words to go on, and "renew", "account" and "documents" are
    # phishing words too (a held-out "what documents do I need to renew my residence
    # permit?" scored as spam in cross-validation).
    "residence": "居住证",
    "permit": "居住证 许可",
    "visa": "签证 出入境",
    "passport": "护照 出入境",
    "documents": "材料 证件",
    "certificate": "证明",
    # Not "register"/"registration": a domain's, a car's or an event's far more often than a
    # household's, and domain-renewal notices are the commonest English spam a public mailbox gets.
    "landlord": "房东",
    "deposit": "押金",
    "salary": "工资",
    "wages": "工资",
    "employer": "老板 公司",
    "hotline": "热线 电话",
    "mediation": "调解",
    "dispute": "纠纷",
    "stolen": "被盗",
    "theft": "盗窃",
    "divorce": "离婚",
    # Everyday matters that are no category of the report's (other): without a gloss such a
    # letter had only its police or court words to go on.
    "hospital": "医院",
    "doctor": "医生",
    "rent": "房租",
    "tenant": "租客",
    "inheritance": "继承",
    "custody": "抚养权",
    "noise": "噪音",
    "parking": "停车",
    "bus": "公交",
    "labour": "劳动",
    "labor": "劳动",
    "arbitration": "仲裁",
    "insurance": "保险",
    "cryptocurrency": "虚拟货币",
    "investigation": "侦查",
    "investigating": "侦查",
    "seized": "扣押",
}
_EN_WORD = re.compile(r"[a-z][a-z']+")
# Runs that carry no meaning for the model: URLs, e-mail addresses, long digit strings.
# ASCII classes only: a CJK-matching class before "@" would backtrack over every position.
# Written out ([0-9], not \d under re.ASCII), so that the scan skips to the ASCII characters
# a match can start with (firstchar.py): 13 -> 5 µs a 300-character letter.
_NOISE = FirstCharPattern(r"https?://[!-~]+|www\.[!-~]+|[0-9A-Za-z_.+-]+@[a-z0-9.-]+|[0-9]{5,}")
# The full-width punctuation Chinese text is full of, with its NFKC form. Folding these first
# lets most letters pass the cheap is_normalized check, where normalize() costs about 35 µs a
# 300-character letter. The result is the same: a character replaced by its own NFKC form
# leaves the text's NFKD, hence its NFKC, unchanged, and anything else is still normalised.
_FOLD = tuple((c, unicodedata.normalize("NFKC", c)) for c in "，？：；！（）～　…")
_LATIN = re.compile(r"[a-z]+")
# Everything but letters, CJK, digits and the question mark (the strongest single cue for
# an inquiry) is a word boundary, not a word.
_PUNCT = re.compile(r"[^\w?]+")


@lru_cache(maxsize=1)
def _traditional_chars() -> frozenset[str]:
    """Matches a character that OpenCC's t2s table changes, so simplified text (the usual
    case) skips the pure-Python converter, which costs about 1 ms per message."""
    table = resources.files("opencc") / "dictionary" / "TSCharacters.txt"
    chars = set()
    for line in table.read_text(encoding="utf-8").splitlines():
        src, _, dst = line.partition("\t")
        if src and dst and src not in dst.split():
            chars.add(src)
    return frozenset(chars)


@lru_cache(maxsize=1)
def _traditional_re() -> re.Pattern[str]:
    """:func:`_traditional_chars` as a test ``re`` runs in C, where ``isdisjoint`` made a string
    object of each of a letter's characters (12 µs a letter). ``re`` looks a character up in a
    class of Basic Multilingual Plane characters in one step, but tries a class holding
    characters beyond it entry by entry (20 times slower than isdisjoint): those few are
    checked only after a character beyond the plane, which Chinese text rarely has."""
    chars = sorted(_traditional_chars())
    bmp = "".join(re.escape(c) for c in chars if c <= "\uffff")
    astral = "".join(re.escape(c) for c in chars if c > "\uffff")
    return re.compile(f"[{bmp}]" + (f"|[\U00010000-\U0010ffff](?<=[{astral}])" if astral else ""))


@lru_cache(maxsize=1)
def _converter() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Fold traditional to simplified Chinese; a no-op (and fast) for simplified text."""
    if _traditional_re().search(text):
        return _converter().convert(text)
    return text


def clean(text: str) -> str:
    """NFKC, lower case, simplified, URLs, addresses and long digit runs gone, English keywords
    glossed in Chinese, spaces folded: the text every model and the repeat matcher read. No
    word segmenter: the repeat index calls this without building one."""
    if not unicodedata.is_normalized("NFKC", text):  # the check is 100x cheaper
        for wide, narrow in _FOLD:
            text = text.replace(wide, narrow)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    text = to_simplified(_NOISE.sub(" ", text))
    extra = [EN_ZH[w] for w in _EN_WORD.findall(text) if w in EN_ZH]
    if extra:
        text = f"{text} {' '.join(extra)}"
    return " ".join(text.split())  # spaces folded and stripped: re.sub(r"\s+") took 5x longer


@lru_cache(maxsize=1)
def _rjieba_class() -> Any:
    """rjieba's ``Jieba`` class, its extension module loaded without the package's
    ``__init__``, which builds a default tokenizer at import (24 MB of dictionary) that nothing
    here uses: every Normaliser has a private one. None without rjieba (jieba stands in)."""
    try:
        package = importlib.util.find_spec("rjieba")
        if package is None:  # pragma: no cover - platforms without an rjieba wheel
            return None
        name = "rjieba.rjieba"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.machinery.PathFinder.find_spec(
                name, list(package.submodule_search_locations or ()))
            if spec is None or spec.loader is None:
                raise ImportError(name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
        return module.Jieba
    except ImportError:  # pragma: no cover - a layout we do not know: the package's own way
        import rjieba

        return rjieba.Jieba


class Normaliser:
    """Turns raw text into (char-level text, word tokens) for the vectorisers."""

    def __init__(self, words: tuple[str, ...] = (), stop_words: tuple[str, ...] = ()) -> None:
        # A private tokenizer so the taxonomy's own names do not leak into other users of
        # jieba's global dictionary.
        self.words = tuple(words)
        self.stop_words = frozenset(stop_words)  # English words dropped from the word tokens
        # Loaded here, not with the module: a tokenizer's dictionary costs 24-32 MB, and the
        # service's repeat index needs only clean() of this module.
        tokenizer = _rjieba_class()
        if tokenizer is not None:
            self._jieba = tokenizer()
            for word in self.words:
                self._jieba.add_word(word, 20000, None)
            self._cut = self._jieba.cut
        else:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # its DEBUG chatter would go to our stderr
            self._jieba = jieba.Tokenizer()
            for word in self.words:
                self._jieba.add_word(word, freq=20000)
            self._cut = self._jieba.lcut

    def clean(self, text: str) -> str:
        return clean(text)

    def tokens(self, clean_text: str) -> str:
        """Space-separated words. HMM is off: faster, and the character n-grams already
        cover words that are not in jieba's dictionary. English stop words are dropped:
        in a small training set they would only say "this is English"."""
        return " ".join(self._words(clean_text, _LATIN.search(clean_text) is not None))

    def _words(self, clean_text: str, latin: bool) -> list[str]:
        """:meth:`tokens` as a list; ``latin``: whether the text has Latin letters."""
        words = self._cut(_PUNCT.sub(" ", clean_text), False)
        if latin:
            words = [w for w in words if w not in self.stop_words]
        return words

    def __call__(self, subject: str, body: str) -> tuple[str, str]:
        """(text for character n-grams, space-separated words) of one message."""
        chars, words = self.split(subject, body)
        return chars, " ".join(words)

    def split(self, subject: str, body: str) -> tuple[str, list[str]]:
        """:meth:`__call__` with the words as jieba's list, in which a space between two
        words is a token " " (the only whitespace left, one character at a time; no word
        holds one). The Scorer looks the words up as they are, where splitting the joined
        string again would cost a sixth of its feature time."""
        clean = self.clean(f"{subject}\n{body}" if subject else body)
        # Latin letters stay out of the character n-grams for the same reason: English
        # words reach the model as words (and through EN_ZH as Chinese keywords).
        latin = _LATIN.search(clean) is not None
        chars = _LATIN.sub(" ", clean) if latin else clean
        return chars, self._words(clean, latin)

    def many(self, items: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
        """(texts for character n-grams, word strings) of (subject, body) pairs, either of
        which may be None: what a model's ``classify_many`` feeds its features."""
        pairs = [self(s or "", b or "") for s, b in items]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def __getstate__(self) -> dict:
        # The jieba dictionary is rebuilt, not pickled; the stop words are sorted so that
        # the pickle does not depend on the string hash seed.
        return {"words": self.words, "stop_words": tuple(sorted(self.stop_words))}

    def __setstate__(self, state: dict) -> None:
        Normaliser.__init__(self, state["words"], state.get("stop_words", ()))


@lru_cache(maxsize=4)
def normaliser_for(words: tuple[str, ...], stop_words: tuple[str, ...] = ()) -> Normaliser:
    """Shared Normaliser per word list: building one costs a jieba dictionary load."""
    return Normaliser(words, stop_words)
