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

# The default of ``[classifier] restrict_threshold`` (see the README's measurement).
DEFAULT_THRESHOLD = 0.2

# Each alternative is general Chinese for reporting misconduct, grouped by what it says.
_CUE_GROUPS = (
    # naming the act of reporting or accusing
    r"举报|检举|揭发|控告|告发|实名反映|匿名反映|知情人|线索",
    # asking for the writer's protection
    r"保密|不敢(?:留|写|署)|不便(?:留|署)|不要透露|别透露|打击报复|报复我|穿小鞋|给小鞋",
    # bribery, kickbacks, extortion
    r"受贿|索贿|行贿|贿赂|回扣|好处费|红包|购物卡|收(?:了|受|下)?[^，。！？,.!?\s]{0,6}"
    r"(?:钱|好处|礼|烟|酒|卡)|送(?:了)?[^，。！？,.!?\s]{0,4}(?:钱|礼|红包)|塞钱|"
    r"意思意思|表示表示|吃拿卡要|吃请|宴请|报销|茅台",
    # protection and collusion
    r"保护伞|撑腰|通风报信|包庇|纵容|勾结|串通|沆瀣|关系户|利益输送|权钱交易",
    # interfering with cases
    r"打招呼|关系案|人情案|金钱案|徇私|枉法|插手|干预(?:司法|案件|办案)|过问案件|压案|"
    r"不立案|有案不立|以罚代刑|违规办案|刑讯|逼供",
    # abuse of office and money
    r"贪污|挪用|侵占|私分|小金库|公款|公车私用|私用公车|以权谋私|滥用职权|玩忽职守|渎职|"
    r"违纪|违法乱纪|八项规定|大操大办|敛财|吃空饷|腐败|廉政|作风问题|纪委|纪检|监委",
)
CUES = re.compile("|".join(_CUE_GROUPS))


def cue(text: str) -> str | None:
    """The first misconduct-report cue in a normalised text (``Normaliser`` output), or None."""
    found = CUES.search(text)
    return found.group(0) if found else None


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
