"""Masking personal data in text that leaves the case file (digest excerpts, the week's XLSX).

The weekly digest quotes citizens to the leadership; the quotes must not carry who wrote them.
Masked: mobile and landline numbers and ID-card numbers however they are typed (groups separated
by dashes, dots or spaces, full-width digits), other long digit runs (bank cards), e-mail
addresses, WeChat and QQ accounts, the door of a home address (house number, building, unit,
room, village group), and personal names. Digits follow fixed formats (GB 11643 for ID cards,
the mainland numbering plan for phones), so regular expressions are exact enough once the
separators are taken out. Names are found three ways, each kept narrow so
that place and office names (王府井, 高新区, 宋庄镇 — which jieba also tags ``nr``) stay readable:

1. names the caller already knows (the submission's sender name);
2. jieba.posseg ``nr`` words that start with a common surname and do not end like a place or an
   office;
3. surname + given name before 先生/女士/同志/… (a bare "王先生" is already anonymous and is kept).

A name keeps its surname and turns the given name into 某 (张建国 → 张某某), the usual
way Chinese reports anonymise people. No maintained library does Chinese PII masking with this
precision, hence the rules below.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from types import ModuleType
from typing import Any

from handlers.digest.postag import cut_detail

# Compound surnames first so that 欧阳娜娜 keeps 欧阳 whole.
COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "夏侯",
    "端木", "申屠", "长孙", "宇文", "司徒", "独孤", "南宫", "西门", "澹台", "轩辕",
)
# The ~150 most common single-character surnames (covering well over 90% of the population).
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
# Last characters of places, offices and roles: a word ending in one of them is not a person.
NOT_NAME_END = frozenset(
    "区县市省镇乡村街路巷道港井桥湖河江山岛湾园苑楼厦院局厅处科所站队委办部司会馆店厂场校"
    "州城门里屯沟庄寺庙宫府坊口关堡营台坝洲滩岭峰谷塘池库渠线号栋室组社团"
)
# Characters that do not occur in given names but do follow surname-like characters in ordinary
# words (何时, 周边, 万元, 高度, 向公安…): a candidate containing one is not a name.
NOT_NAME_CHARS = frozenset(
    "的了是在不也都和与就要会说时能么什这那哪个们些把被让给从向对为以及而或但并很太更最还已"
    "元万亿次年月日号点分元度量边面前后左右上下中内外里公局部门警察官员长主任书记领导干政府"
    "法检院委办处科所站队"
)
# Tags jieba gives the given-name half of a name it cut in two.
_GIVEN_FLAGS = frozenset({"nr", "nz", "nrt", "nrfg"})
# Surnames that are far more often a preposition or conjunction: "和王先生" is 和 + 王先生.
FUNCTION_SURNAMES = frozenset("和向于从同及给为应全成时")
_NAME_STARTS = SURNAMES | frozenset(c[0] for c in COMPOUND_SURNAMES)
_NAME_START = re.compile("[" + "".join(sorted(_NAME_STARTS)) + "]")
HONORIFICS = ("先生", "女士", "同志", "小姐", "师傅", "老师", "阿姨", "大爷")
MASK_CHAR = "某"

# Digits and separators as citizens type them. Full-width letters, digits and the signs of
# numbers and addresses (１３９, －, ＠) are folded to ASCII first, so every rule below sees one
# alphabet; Chinese punctuation (，：（）) is left as written.
_HALF_WIDTH = {c: c - 0xFEE0 for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                       *range(0xFF41, 0xFF5B), *map(ord, "－．＠＿＋"))}
_HALF_WIDTH[0x3000] = 0x20  # the ideographic space
_SEP = r"[-. \u00a0]"  # one separator between digit groups: 139-1234-5678, 139.1234.5678
_DIGIT_RUN = re.compile(rf"(?<![0-9A-Za-z])\d(?:{_SEP}?\d)*(?:{_SEP}?[Xx])?(?![0-9A-Za-z])")
# GB 11643: six digits of region, the birth date, three of sequence, a check digit or X (the
# 15-digit form before 1999: a two-digit year).
_ID_CARD = re.compile(
    r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"|[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}")
# A mainland mobile number, with or without +86.
_MOBILE = re.compile(r"(?:86)?1[3-9]\d{9}")
# Landline with area code: 010-12345678, (0755)1234567, 0371 6612 3456.
_LANDLINE = re.compile(rf"(?<![0-9])(?:\(0\d{{2,3}}\)|（0\d{{2,3}}）|0\d{{2,3}}{_SEP})"
                       rf"\d{{3,4}}{_SEP}?\d{{4}}(?![0-9])")
# A bare 7–8 digit number counts as a phone only right after a phone word.
_LOCAL_PHONE = re.compile(r"((?:电话|手机|座机|联系方式|联系电话|号码|tel|Tel|TEL)[:：是为\s]{0,3})"
                          rf"(\d(?:{_SEP}?\d){{6,7}})(?![0-9])")
# ASCII local parts only: Python's \w would swallow the Chinese word before the address. The
# domain may be an internationalised one (例子.中国).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*"
                    r"@([\w-]+(?:\.[\w-]+)+)")
# Accounts named by their service: 微信号 abc_123, vx：wxid_x1, QQ 123456, 扣扣号是12345.
# WeChat IDs are 6–20 letters, digits, _ and - (a phone number also serves as one); QQ numbers
# 5–11 digits.
_ACCOUNT = re.compile(
    r"((?<![A-Za-z])(?:微信|wechat|weixin|vx|wx|qq|扣扣|企鹅)(?:号码|号|账号|帐号|id)?\s*[:：是为]?\s*)"
    r"([A-Za-z0-9][-_A-Za-z0-9]{4,19})(?![-_A-Za-z0-9])", re.IGNORECASE)
# Where someone lives, down to the door: the number on a road (迎春路88号), the building, unit
# and room in an estate (3栋2单元502室, 8号楼, 5-2-301), the group of a village (张庄村五组).
# The road, the estate and the village stay: they say where a problem is, the door says who.
_NUM = "[0-9一二三四五六七八九十百零〇两]+"
_ADDRESS = re.compile(
    rf"(?<=[路街巷弄里道])(?:{_NUM}(?:[-之]{_NUM})?)(?=号)"  # 迎春路88号, 人民路12-3号
    rf"|{_NUM}(?=栋|幢|号楼|座楼|单元|室|户)"  # 3栋 2单元 502室 8号楼
    rf"|(?<=[栋幢座元])\s*{_NUM}(?=号|[^0-9号]|$)"  # the room right after: 3栋502, 2单元301号
    rf"|(?<=[村队])\s*{_NUM}(?=组|队|社)"  # 张庄村五组, 村民小组 is untouched
    rf"|(?<=[区园苑城寓庭府]){_SEP}?\d{{1,3}}(?:-\d{{1,4}}){{1,2}}(?![0-9])"  # 幸福小区5-2-301
)
_CJK = re.compile(r"[\u4e00-\u9fff]+")
# What the digit rules (any \d, as _DIGIT_RUN reads digits) and the account rule (its account
# starts with a Latin letter or an ASCII digit, case-insensitively as _ACCOUNT reads it: the
# Kelvin sign counts) cannot match without.
_ANY_DIGIT = re.compile(r"\d")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]", re.IGNORECASE)
_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + "|[" + "".join(sorted(SURNAMES)) + "])"
# A writer naming themself or someone else by role (我叫陆海梅, 举报人：王强): the name right after.
_NAME_CUES = ("我叫", "我名叫", "本人叫", "名叫", "姓名", "署名", "联系人", "举报人", "检举人",
              "控告人", "反映人", "来信人", "当事人", "申请人")
_VERB_AFTER_NAME = frozenset("住在是家说到去来从和与今现年")
_INTRODUCED_NAME = re.compile(
    rf"(?:{'|'.join(_NAME_CUES)})[:：是为\s]{{0,2}}({_SURNAME})([\u4e00-\u9fff]{{1,2}})")
# A name a cue announces: a role or title before it (村主任冉茂林, 城管执法人员林志远, 我是退休工人
# 喻春生), a writer naming themself or whom they report (本人诸葛青云, 举报欧阳建华), or a title
# right after it (张三所长). jieba's tagger misses uncommon given names; here the context says a
# name follows, so any of the ~500 commonest surnames starts one (the tagger's rules keep the
# shorter list above: each surname there is a place where its HMM must run). Masking a word
# that only looks like a name is the safer mistake in the digest.
MORE_SURNAMES = frozenset(
    "褚卫尤吕施孔严魏陶戚奚郎昌凤花俞柳酆史费廉贺倪滕殷罗邬乐傅皮卞元顾平萧湛祁禹狄贝臧计伏"
    "谈茅纪麻强危盛虞支昝经裘干宣贲郁杭洪诸钮嵇滑荀羊於惠封芮羿储汲邴糜松井富乌巴弓牧隗山"
    "宓蓬郗班仰秋伊暴钭厉戎祖束幸韶郜蓟薄印宿怀邰鄂索咸籍赖蔺屠阴郁胥能苍双闻莘贡劳逄扶堵宰"
    "郦雍却璩濮寿通扈燕冀郏浦别充慕茹习宦鱼容慎戈庾终暨居衡步都满弘匡国广禄阙东殳沃利蔚越"
    "夔隆厍晁勾融訾阚那空毋乜养鞠须丰巢蒯相后荆红竺权逯盖益桓公岳帅缑亢况琴佴伯赏墨哈谯笪年"
    "爱佘仉督归海晋楚闫法汝鄢涂钦肖旷揭粟战蹇原占才校植铁区佐练过郦伞郅银阿官郑谌雒信檀"
) | SURNAMES
MORE_COMPOUNDS = COMPOUND_SURNAMES + (
    "万俟", "闻人", "东郭", "呼延", "百里", "梁丘", "左丘", "太史", "钟离", "宗政", "濮阳", "淳于",
    "单于", "太叔", "公羊", "仲孙", "乐正", "漆雕", "公良", "拓跋", "夹谷", "宰父", "谷梁", "段干",
    "东门", "羊舌", "微生", "公冶", "公西", "巫马", "司空", "司寇", "亓官", "颛孙", "第五",
)
_ROLE_CUES = (
    "我是", "本人", "举报", "检举", "控告", "投诉", "反映", "状告", "联系人", "村主任", "主任", "书记",
    "支书", "所长", "局长", "队长", "科长", "处长", "站长", "院长", "庭长", "村长", "镇长", "乡长",
    "组长", "经理", "老板", "民警", "警官", "辅警", "协警", "执法人员", "工作人员", "法官", "检察官",
    "律师", "工人", "老师", "医生", "护士", "同志", "会计", "网格员", "村民", "居民", "业主", "职工",
    "员工", "司机", "保安", "邻居", "丈夫", "妻子", "父亲", "母亲", "儿子", "女儿", "哥哥", "姐姐",
    "弟弟", "妹妹", "原告", "被告", "申请人", "当事人", "受害人", "个体户",
)
_TITLES_AFTER = ("所长", "局长", "队长", "科长", "处长", "站长", "院长", "庭长", "村长", "镇长",
                 "乡长", "组长", "主任", "书记", "支书", "经理", "警官", "法官", "检察官", "民警",
                 "辅警", "律师", "医生", "会计")
# Characters of titles, ranks and grades, never of a given name (王副所长, 高三班主任, 李总经理).
_ANY_TITLE = re.compile("|".join(_TITLES_AFTER))  # plain CJK words: nothing to escape
_NOT_GIVEN = NOT_NAME_CHARS | frozenset("副总务班级届某")
# What may follow a one-character given name: a title, a role, a verb of the letter.
_NEXT_AFTER_NAME = _VERB_AFTER_NAME | frozenset(t[0] for t in _TITLES_AFTER + _ROLE_CUES)
_CUE_SURNAME = ("(?:" + "|".join(MORE_COMPOUNDS) + "|[" + "".join(sorted(MORE_SURNAMES))
                + "])")
# Cues may follow one another (我是原告笪文峤, 村会计谯丹): the name comes after the last.
_CUED_NAME = re.compile(rf"(?:(?:{'|'.join(_ROLE_CUES)})[:：是为\s]{{0,2}})+({_CUE_SURNAME})"
                        r"([\u4e00-\u9fff]{1,2})")
_TITLED_NAME = re.compile(rf"({_CUE_SURNAME})([\u4e00-\u9fff]{{1,2}})"
                          rf"(?=(?:{'|'.join(_TITLES_AFTER)}))")
_HONORIFIC_NAME = re.compile(
    rf"({_SURNAME})([\u4e00-\u9fff]{{1,2}})(?=(?:{'|'.join(HONORIFICS)}))"
)


_COMPOUNDS = frozenset(COMPOUND_SURNAMES)
_COMPOUND_LENGTHS = sorted({len(c) for c in COMPOUND_SURNAMES})  # (2,): a lookup, not a loop


def _surname_of(word: str) -> str | None:
    for n in _COMPOUND_LENGTHS:
        if len(word) > n and word[:n] in _COMPOUNDS:
            return word[:n]
    return word[0] if word[:1] in SURNAMES and len(word) > 1 else None


def _masked_name(word: str) -> str:
    surname = _surname_of(word) or word[:1]
    return surname + MASK_CHAR * (len(word) - len(surname))


@lru_cache(maxsize=65536)
def looks_like_name(word: str) -> bool:
    """A 2–4 character word that starts with a surname and reads like a given name after it.

    Cached: :func:`_name_starts` asks it of every stretch that starts with a surname, and
    letters repeat the same few thousand stretches."""
    surname = _surname_of(word)
    if surname is None or not 2 <= len(word) <= 4:
        return False
    given = word[len(surname):]
    if not 1 <= len(given) <= 2 or word[-1] in NOT_NAME_END or given in HONORIFICS:
        return False
    if len(set(word)) == 1:  # 谢谢, 常常: reduplicated words, not names
        return False
    if word in HONORIFICS or (surname in FUNCTION_SURNAMES and given[0] in SURNAMES):
        return False
    return not any(ch in NOT_NAME_CHARS for ch in given)


@lru_cache(maxsize=1)
def _posseg() -> ModuleType:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def _name_starts(block: str) -> list[bool]:
    """For each position of ``block``: whether a 2–4 character stretch starting there passes
    :func:`looks_like_name`.

    Every name :func:`_names_in` can return is such a stretch (a tagged word, or a surname and
    the word after it), so a block where none starts needs no tagging, and a run of characters
    where none starts needs no HMM (:func:`_tokens`): a plain scan, far cheaper than jieba's
    part-of-speech tagger.
    """
    n = len(block)
    starts = [False] * n
    for m in _NAME_START.finditer(block):  # most characters are no surname's: not visited
        i = m.start()
        starts[i] = any(looks_like_name(block[i:i + k]) for k in (2, 3, 4) if i + k <= n)
    return starts


def _tokens(block: str, starts: list[bool]) -> list[Any]:
    """jieba.posseg's tokens of one CJK/alphanumeric run, with its HMM run only where a name
    can start; every other token is the one posseg gives.

    posseg (its ``__cut_DAG``) cuts the run by the dictionary first; each stretch of single
    characters that is not a dictionary word goes to a part-of-speech HMM (``__cut_detail``,
    Viterbi over a few hundred joint states per character: nearly all of masking's time on
    letters as citizens write them; :mod:`handlers.digest.postag` runs the same pass by numpy). A name starts at the start of one of its tokens, so no name can start
    inside a stretch where ``starts`` marks no position, nor in the token just before it (a
    compound surname, at most two characters, whose given name the stretch would begin) when
    ``starts`` marks none of its characters either. Such a stretch is returned as single
    characters tagged ``x``, which :func:`_names_in` never reads as part of a name: the names
    are exactly those of tagging the whole run (tests/handlers/digest/test_digest_mask.py
    checks it on the corpus and random text). The loop is posseg's own, because jieba offers
    no hook to skip the HMM per stretch.
    """
    tagger = _posseg().dt
    tokenizer = tagger.tokenizer
    tagger.makesure_userdict_loaded()
    route: dict[int, tuple[float, int]] = {}
    tokenizer.calc(block, tokenizer.get_DAG(block), route)
    tags = tagger.word_tag_tab
    out: list[Any] = []

    def stretch(start: int, end: int) -> None:
        buf = block[start:end]
        if len(buf) == 1:
            out.append((buf, tags.get(buf, "x")))
        elif tokenizer.FREQ.get(buf):
            out.extend((ch, tags.get(ch, "x")) for ch in buf)
        elif any(starts[max(0, start - 2):end]):
            out.extend(cut_detail(buf))  # posseg's own HMM pass, by numpy (postag)
        else:
            out.extend((ch, "x") for ch in buf)

    x, single = 0, -1  # single: where the current stretch of single characters began
    while x < len(block):
        y = route[x][1] + 1
        if y - x == 1:
            single = x if single < 0 else single
        else:
            if single >= 0:
                stretch(single, x)
                single = -1
            out.append((block[x:y], tags.get(block[x:y], "x")))
        x = y
    if single >= 0:
        stretch(single, len(block))
    return out


def _tagged_names(text: str) -> set[str]:
    """``nr`` words that look like names; a lone surname joins the name-like token after it
    (jieba often cuts 王大伟 into 王/大伟 and 周建华 into 周/建华).

    jieba.posseg tags each run of CJK and alphanumeric characters (its ``re_han_internal``) on
    its own, and what stands between two runs becomes punctuation or space tokens, never a
    given name: so a name never spans two runs, tagging run by run finds exactly what tagging
    the whole text finds, and runs that cannot hold a name are skipped. Tagging is most of the
    digest's XLSX time; on the project's corpus two thirds of the text needs none, and within
    the rest the HMM runs only where a name can start (:func:`_tokens`).
    """
    posseg = _posseg()
    found: set[str] = set()
    for block in posseg.re_han_internal.split(text):
        if block and posseg.re_han_internal.match(block):
            starts = _name_starts(block)
            if any(starts):
                found |= _names_in(_tokens(block, starts))
    return found


def _names_in(tokens: list[Any]) -> set[str]:
    """Names among jieba.posseg tokens (pairs of word and flag), by the rules above."""
    found: set[str] = set()
    for i, (word, flag) in enumerate(tokens):
        if flag != "nr":
            continue
        if looks_like_name(word):
            found.add(word)
        elif (word in SURNAMES or word in COMPOUND_SURNAMES) and i + 1 < len(tokens):
            nxt, nxt_flag = tokens[i + 1]
            if nxt_flag in _GIVEN_FLAGS and looks_like_name(word + nxt):
                found.add(word + nxt)
    return found


def _stars(text: str) -> str:
    return "".join("*" if not ch.isspace() and ch not in "-." else ch for ch in text)


def _masked_id(run: str) -> str | None:
    """An ID card keeps its first three and last two characters, a mobile (with its 86) its
    first three and last four; None for anything else."""
    digits = re.sub(r"[^0-9Xx]", "", run)
    if _ID_CARD.fullmatch(digits):
        return f"{digits[:3]}{'*' * (len(digits) - 5)}{digits[-2:]}"
    if _MOBILE.fullmatch(digits):
        return f"{digits[:-8]}****{digits[-4:]}"  # 86 139****5678
    return None


def _mask_number(m: re.Match[str]) -> str:
    """A run of digits with separators: an ID card or a mobile as a whole, else each of its
    space-separated parts (a date typed before a phone number: 2023-10-12 13912345678), else,
    at 15–19 digits (a bank card, a mistyped ID card), all but the last four. Shorter runs
    (sums, dates, case numbers) are left alone."""
    run = m.group(0)
    whole = _masked_id(run)
    if whole is not None:
        return whole
    parts = run.split(" ")
    masked = [_masked_id(p) for p in parts]
    if any(masked):
        return " ".join(p if x is None else x for p, x in zip(parts, masked, strict=True))
    digits = re.sub(r"[^0-9Xx]", "", run)
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}" if 15 <= len(digits) <= 19 else run


def _introduced(m: re.Match[str]) -> str | None:
    """The name after a cue: the surname with two given characters if that reads as a name,
    else with one (我叫王强住在… is 王强, not 王强住)."""
    surname, given = m.group(1), m.group(2)
    if len(given) == 2 and given[1] in _VERB_AFTER_NAME:
        given = given[:1]
    return surname + given if looks_like_name(surname + given) else None


def _cued(m: re.Match[str]) -> tuple[str, str] | None:
    """(name, its masked form) after a cue or before a title: the surname with two given
    characters, else with one (举报王强所长: 王强; 我叫王强住在…: 王强), when the given name has
    no character of a title, a place or a grammatical word (举报王局长 stays: already anonymous)."""
    surname, given = m.group(1), m.group(2)
    if len(given) == 2 and given[1] in _NEXT_AFTER_NAME:
        given = given[:1]
    if (any(ch in _NOT_GIVEN for ch in given) or given[-1] in NOT_NAME_END
            or given in HONORIFICS or surname + given in HONORIFICS
            or (surname in FUNCTION_SURNAMES and given[0] in MORE_SURNAMES)):
        return None
    return surname + given, surname + MASK_CHAR * len(given)


def mask_digits(text: str) -> str:
    """Identity and contact details only: ID cards, phones, e-mail addresses, WeChat and QQ
    accounts, and the house, room or village group of an address (no segmentation: cheap)."""
    text = text.translate(_HALF_WIDTH)
    # Each rule below needs a character most texts lack (a digit, an @, a Latin letter): one
    # search for it costs less than a rule's scan, and a rule that cannot match changes nothing.
    if _ANY_DIGIT.search(text):
        text = _DIGIT_RUN.sub(_mask_number, text)
        text = _LANDLINE.sub(lambda m: "****" + m.group(0)[-4:], text)
        text = _LOCAL_PHONE.sub(lambda m: m.group(1) + "****" + m.group(2)[-4:], text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if _ASCII_ALNUM.search(text):
        text = _ACCOUNT.sub(lambda m: m.group(1) + "***", text)
    return _ADDRESS.sub(lambda m: _stars(m.group(0)), text)


def mask(text: str, known_names: Iterable[str | None] = ()) -> str:
    """``text`` with identity and contact details (:func:`mask_digits`) and names masked."""
    if not text:
        return ""
    text = mask_digits(text)
    known = {n.strip() for n in known_names if n and len(n.strip()) >= 2}
    for name in sorted((n for n in known if not _CJK.fullmatch(n)), key=len, reverse=True):
        text = text.replace(name, "***")
    names = {n for n in known if _CJK.fullmatch(n) and len(n) <= 6}
    names |= _tagged_names(text)
    names |= {m.group(1) + m.group(2) for m in _HONORIFIC_NAME.finditer(text)
              if looks_like_name(m.group(1) + m.group(2))}
    names |= {found for m in _INTRODUCED_NAME.finditer(text) if (found := _introduced(m))}
    masked = {name: _masked_name(name) for name in names}
    titled = _ANY_TITLE.search(text) is not None  # one scan for a title, before its rule's
    for rule in (_CUED_NAME, _TITLED_NAME) if titled else (_CUED_NAME,):
        for m in rule.finditer(text):
            if cued := _cued(m):  # its surname list knows more compounds (巫马, 闻人)
                masked[cued[0]] = cued[1]
    if not masked:
        return text
    # One pass, longest first: 张建国 is replaced before a shorter 张建 could split it, and a
    # name inside one already masked (司马 of 司马丹 → 司马某) is not masked again.
    names_re = "|".join(map(re.escape, sorted(masked, key=len, reverse=True)))
    return re.sub(names_re, lambda m: masked[m.group()], text)
