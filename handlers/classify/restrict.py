"""Whether a letter is restricted: a 举报 whose content only supervisors and admins may read.

The one decision the service (the store step), ``feedback-bot classify`` and ``classify-eval``
share. It is tuned for recall, because its two errors are not alike: restricting a letter that
is not a 举报 only routes it to a supervisor, while leaving a 举报 open shows a reporter's name,
phone and accusation to every reviewer. So a letter is restricted when any of these holds:

1. the writer said it is a 举报 (the web form and staff entry ask; a mail cannot tick a box);
2. the classifier's kind is ``report``;
3. the kind model gives ``report`` at least ``threshold`` probability (low by design:
   ``[classifier] restrict_threshold``; the README has the measurement behind the default);
4. the letter uses words that in Chinese public writing mark an accusation of an official's
   misconduct (:data:`CUES`): naming the act (举报, 检举, 揭发), asking for the writer's
   protection (请为我保密, 怕打击报复), or naming the misconduct itself (受贿, 索贿, 保护伞,
   吃拿卡要, 打招呼 in a case, "收了钱才给办" ...).

The cues are read from the classifier's normalised text (simplified characters, full-width
folded, English words carrying their Chinese keywords), so 舉報 and "bribe" count as well.
No maintained library recognises Chinese whistleblowing language, hence the list below; it is
written from what such letters say in general (the 纪检监察 categories of misconduct), not
from the project's samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .firstchar import FirstCharPattern

# The default of ``[classifier] restrict_threshold`` (see the README's measurement).
DEFAULT_THRESHOLD = 0.10

# Each alternative is general Chinese for reporting misconduct, grouped by what it says. Letters
# rarely name the offence: they describe it ("收了钱才给办", "他小舅子的公司"), so the groups
# below describe acts as well as naming them.
# The last character of an official's title (所长, 主任, 书记, 领导, 干部, 法官, 民警, 警察, 调解员,
# 管教, ...): one character class keeps the scan fast where a list of titles would not.
_OFFICIAL_END = r"[长任记计导部官警察员教]"
_KIN = r"(?:亲戚|小舅子|舅子|表弟|表哥|侄子|外甥|老婆|妻子|丈夫|儿子|女儿|弟弟|哥哥|姐夫|妹夫|同学|朋友)"
_CUE_GROUPS = (
    # naming the act of reporting or accusing
    r"举报|检举|揭发|控告|告发|实名反映|知情人",
    # asking for the writer's protection, or fearing for it
    r"保密|不敢(?:留|写|署|说|声张)|不便(?:留|署)|不要(?:透露|让)|别透露|打击报复|报复|"
    r"穿小鞋|给小鞋|敢怒不敢言|威胁",
    # money or gifts changing hands with an official
    r"受贿|索贿|行贿|贿赂|回扣|好处|红包|购物卡|干股|入股|股东|塞钱|意思意思|表示表示|"
    r"吃拿卡要|吃请|宴请|茅台|打点|疏通|懂规矩|懂事|托人|走后门|"
    r"[“\"'][^”\"']{1,6}费[”\"']|"  # a fee with a name in quotes: “加急费”, “辛苦费”
    r"(?:收|要|拿|索|交|给|送|转)(?:了|下|到)?[^，。！？；\s]{0,8}?"
    r"(?:\d+|[一二两三四五六七八九十几百千万]+)\s*(?:块|元|万|千|百)|"
    r"收(?:了|受|下)?[^，。！？,.!?\s]{0,6}(?:钱|礼|烟|酒|卡)|送(?:了)?[^，。！？,.!?\s]{0,4}(?:钱|礼|东西)",
    # protection, collusion, favours to kin
    r"保护伞|撑腰|通风报信|包庇|纵容|勾结|串通|沆瀣|关系户|利益输送|权钱交易|称兄道弟|拜把|"
    r"不了了之|从来没(?:人|被)查|提前(?:收工|关门)|" + _OFFICIAL_END + r"的" + _KIN + "|" + _KIN +
    r"(?:开的|的公司|所在的|承包)",
    # interfering with cases, abusing suspects or evidence
    r"打招呼|关系案|人情案|金钱案|徇私|枉法|插手|干预(?:司法|案件|办案)|过问案件|压案|压着|"
    r"不立案|有案不立|以罚代刑|降成|违规办案|刑讯|逼供|打了我|打人|动手打|透露给|泄露|"
    r"私下(?:见|约|会)|单独约见",
    # abuse of office and money
    r"贪污|挪用|侵占|私分|小金库|公款|公车私用|私用公车|警车|公车|单位的车|以权谋私|滥用职权|"
    r"玩忽职守|渎职|违纪|违法乱纪|八项规定|大操大办|敛财|吃空饷|工资照发|账外|据为己有|"
    r"假账|假病历|造假|虚报|冒领|套取|骗取|腐败|廉政|纪委|纪检|监委",
)
# English letters reach the cues through the normaliser's word tokens (Latin is kept there).
_ENGLISH = r"(?<![a-z])(?:bribes?|bribery|kickbacks?|corrupt\w*|fees?|confidential)(?![a-z])"
# One pattern per group, searched in turn, each scanned by its first characters (firstchar.py):
# 13 µs a 300-character letter, against 56 µs for one alternation of them all.
CUES = tuple(FirstCharPattern(group) for group in _CUE_GROUPS)
ENGLISH_CUES = FirstCharPattern(_ENGLISH)
_LATIN = re.compile(r"[a-z]")


def cue(text: str, words: str = "") -> str | None:
    """The first misconduct-report cue in a normalised text (``Normaliser`` output), or None;
    ``words``, its word tokens, are read for English cues only (the character text has lost
    its Latin letters), and only when there are any: the scan is a tenth of a letter's cost."""
    for pattern in CUES:
        if (span := pattern.search(text)) is not None:
            return text[span[0]:span[1]]
    if words and _LATIN.search(words) and (span := ENGLISH_CUES.search(words)) is not None:
        return words[span[0]:span[1]]
    return None


@dataclass(frozen=True)
class Restriction:
    """The decision and where it came from (``Submission.restricted_by``), with a reason in
    Chinese for the letter's history."""

    restricted: bool
    by: str | None  # writer, classifier; None when open
    reason: str = ""


OPEN = Restriction(False, None)


def decide(*, writer: bool = False, kind: str | None = None, report_prob: float = 0.0,
           report_cue: str | None = None, threshold: float = DEFAULT_THRESHOLD) -> Restriction:
    """Restricted when the writer said 举报, or kind is report, or the report probability is at
    least ``threshold``, or a report cue was found (module docstring)."""
    if writer:
        return Restriction(True, "writer", "来信人选择了“举报”")
    if kind == "report":
        return Restriction(True, "classifier", "分类为举报")
    if report_prob >= threshold:
        return Restriction(True, "classifier", f"可能是举报（{report_prob:.0%}）")
    if report_cue:
        return Restriction(True, "classifier", f"含举报用语“{report_cue}”")
    return OPEN
