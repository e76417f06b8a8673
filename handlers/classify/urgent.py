"""Whether a letter is urgent: a risk to someone's life or safety that staff must see today.

Urgent means self-harm or suicide, a threat of violence, a collective petition or gathering
planned at a government office, an ongoing danger (domestic violence now, a child in danger, a
missing person) or a crime in progress. Two signals are combined, because either alone fails
both ways:

1. **Cues read in context.** :data:`CUE_GROUPS` holds general Chinese (and English) wording of
   each kind of risk, including indirect phrasings (遗书, 后事, 一了百了, 同归于尽, 说到做到).
   A cue counts as *live* only when its sentence does not frame it as somebody else's story or
   as the past: a news item, a novel or a film, a research project, a question of "what should
   one do if", a danger that is over (去年, 幸好, 已经解决), or a negation right before it
   (不会跳楼). 急死了, 累得要死 and 跳楼价 are not cues at all.
2. **A small model.** A logistic regression over the classifier's own features, trained on the
   urgent letters of the corpus (``urgent`` in corpus.jsonl) against every other labelled
   letter, catches the letters that use none of the obvious words.

A letter is urgent when it is not spam and either the model is sure on its own
(:data:`MODEL_BAR`) or a live cue is backed by at least :data:`CUE_BAR` of the model. The
score staff see is the model's probability; the cues say why. No maintained library recognises Chinese crisis language, hence the lists below;
they are written from what such letters say in general, not from the project's samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The bars were chosen by cross-validation over the corpus (README, "Urgent letters").
MODEL_BAR = 0.8  # the model alone
CUE_BAR = 0.12  # the model behind a live cue
STRONG_BAR = 0.05  # the model behind a live cue of self-harm, a threat or a planned gathering
STRONG = ("轻生", "暴力威胁", "聚集上访")

# Each group: a label for staff, then the wording. Alternatives are general phrasings, grouped
# by what they say; the character text they run on is simplified, lower-case and NFKC-folded.
CUE_GROUPS: tuple[tuple[str, str], ...] = (
    ("轻生", r"跳楼(?!价|大甩卖)|跳河|跳江|跳桥|跳海|跳下去|从.{0,6}跳下|楼顶|天台|喝农药|农药|"
             r"安眠药|老鼠药|割腕|上吊|烧炭|自杀|自尽|轻生|寻短见|想不开|不想活|活不下去|活着(?:没|有什么)"
             r"意思|没意义|一了百了|一死了之|了断|结束(?:这一切|生命|自己)|遗书|后事|告别|走之前|"
             r"最后一(?:次|封)|不想(?:再)?醒|死在(?:那|这|门口|法院|你们)|逼死|等(?:着)?那一天|"
             r"拖累|说声再见|对不起(?:大家|宝宝|你们)|(?:不想|不要)(?:再)?醒"),
    ("暴力威胁", r"同归于尽|鱼死网破|拼了|砍死|砍人|捅(?:死|人|谁)|杀了|杀我|弄死|打死|解决掉|"
                r"打断.{0,4}腿|拿(?:着)?刀|带(?:着)?刀|菜刀|一把刀|汽油|放火|点(?:一)?把火|烧了|"
                r"炸了|报复社会|(?:去|要|就)报复|算账|收拾|自己(?:讨|的办法)|住哪|要你好看|让.{0,3}好看|说到做到|有枪|"
                r"等着(?:看|瞧)|出(?:了)?人命"),
    ("聚集上访", r"(?:集体|一起|全体|全村|联名|组织|约好|商量好|包车|报名)[^。！？]{0,24}"
                r"(?:上访|去.{0,8}(?:政府|市委|区委|法院|政法委|信访|北京|省里|天安门)|堵门|"
                r"堵路|拉横幅|打横幅|横幅|静坐|下跪|讨说法|抗议|直播)|"
                r"集体(?:反映|请愿|讨薪|维权|上访)|"
                r"(?:政府|市委|区委|法院|政法委|信访局|住建局|街道办)(?:大)?门口[^。！？]{0,12}"
                r"(?:静坐|下跪|横幅|讨(?:个)?说法|抗议|不走|集体)"),
    ("正在发生的危险", r"家暴|打我|打她|打孩子|掐|踹|砸(?:门|东西)|反锁|躲在|救命|求救|解救|"
                     r"关在|被关|锁在|不让.{0,4}(?:出门|回家|下车)|没回(?:家|来)|失联|"
                     r"(?:她|他|孩子|儿子|女儿|妻子|老婆|丈夫|老公|妈|爸|父亲|母亲|老人)[^。!?;]{0,14}"
                     r"联系不上|"
                     r"关机|不见了|找不到人|走失|失踪|离家出走|抱上车|拉进(?:了)?(?:屋|房|车|后屋)|跟踪|"
                     r"拐(?:走|卖|骗)|还没回(?:家|来)|没人应|没(?:有)?动静|"
                     r"传销|被控制|逼着|烫|青紫"),
    ("正在发生的犯罪", r"(?:正在|现在|还在|刚才|今晚|今天)[^。！？]{0,16}(?:偷|倒|排|挖|打架|"
                     r"诈骗|转移|搬|销毁|赌|收钱|砸|埋|乱挥|闯)|(?:要|准备|想)跑路|明天就走|"
                     r"买了[^。！？]{0,6}机票|抓个现行|放哨|还(?:停)?在那(?:里)?没走|还没走"),
)
_ENGLISH = (
    ("轻生", r"suicid\w*|kill(?:ing)? myself|end(?:ing)? my life|goodbye letters?|"
             r"can'?t take it any ?more|before i go|(?:don'?t|do not) want to live"),
    ("暴力威胁", r"threat\w*|kill (?:me|you|him|her|them|us)|gun|knife"),
    ("正在发生的危险", r"beat(?:ing|en)|scream\w*|help me|missing|kidnap\w*|locked (?:in|up)"),
    ("正在发生的犯罪", r"breaking into|right now"),
)
CUES = tuple((label, re.compile(pattern)) for label, pattern in CUE_GROUPS)
ENGLISH_CUES = tuple((label, re.compile(r"(?<![a-z])(?:" + p + r")(?![a-z])"))
                     for label, p in _ENGLISH)

# A sentence that frames its alarm word as somebody else's story, a hypothetical or advice.
_STORY = re.compile(
    r"新闻|报道|报导|小说|电视剧|剧里|剧中|追剧|电影|故事|情节|视频|课题|调研|宣传|论坛|帖子|"
    r"案例|假如|如果|要是|万一|提前了解|想了解|了解一下|怎么认定|应该(?:找|打|怎么)|防溺水|防拐|预防|"
    r"(?:很多|有些|有的)人(?:会|都会|遇到)|不是说现在"
)
# One that puts it in the past, unless it also says the danger is now or coming.
_PAST = re.compile(r"去年|前年|以前|曾经|当年(?!的)|那时|几年前|年前|后来|想过|有过|动过|已经(?:解决|过去|好了|抢救|"
                   r"处理|被解救|被抓|脱险|找到|回来)|幸好|幸亏|差点|被抓|抓了|打掉|判了|审判结果")
_OVER = re.compile(r"后来|已经(?:解决|过去|好了|抢救|处理|被解救|被抓|脱险|找到|回来)|幸好|幸亏|"
                   r"被抓|抓了|判了|被解救|没事了")
_NOW = re.compile(r"现在|正在|还在|刚才|今天|今晚|明天|马上|这次|下周|本周|周[一二三四五六日末]|"
                  r"月底|又|再")
_NEGATED = re.compile(r"(?:不会|不要|不能|没有|并不|决不|绝不|不是|别|防止|避免|以免)\S{0,2}$")
_ENDS = "。！？!?\n；;"
_LATIN = re.compile(r"[A-Za-z]")
_EN_FRAME = re.compile(r"(?<![a-z])(?:news|novel|movie|film|story|tv series|last year|years ago)"
                       r"(?![a-z])")


@dataclass(frozen=True)
class Urgency:
    """The decision, its score and the cues behind it (labels and the words found)."""

    urgent: bool
    score: float
    cues: tuple[str, ...] = ()

    def reason(self) -> str:
        """One line in Chinese for staff."""
        if not self.urgent:
            return ""
        found = "、".join(self.cues) if self.cues else "整体用语"
        return f"可能需要当天处理（{self.score:.0%}）：{found}"


CALM = Urgency(False, 0.0)


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence around ``text[start:end]``."""
    lo = max(text.rfind(c, 0, start) for c in _ENDS) + 1
    ends = [i for i in (text.find(c, end) for c in _ENDS) if i >= 0]
    return lo, min(ends, default=len(text))


def _in_past(text: str, lo: int, hi: int, at: int, end: int) -> bool:
    """Whether the sentence ``text[lo:hi]`` puts the cue ``text[at:end]`` in the past: a past
    marker before it or ending with it ("已经被解救") with no "now" between them ("去年就判了,
    我明天去…" is live), or, after it, one saying the danger is over ("…传销,已经被解救回来了";
    "他以前坐过牢" after a threat is background, not the end of the danger)."""
    before = [p.end() for p in _PAST.finditer(text, lo, end)]
    if before and not _NOW.search(text, before[-1], at):
        return True
    after = _OVER.search(text, end, hi)
    return after is not None and not _NOW.search(text, at, after.start())


def live_cues(text: str, raw: str = "", *, chinese: bool = True) -> tuple[str, ...]:
    """``label：word`` for every cue in ``text`` (normalised character text, which has lost its
    Latin letters) whose sentence does not frame it as news, fiction, a hypothetical or the past,
    and that is not negated; English cues are read from ``raw``, the letter as written.

    Each pattern scans the whole text once (most letters have no cue at all); only a match has
    its sentence looked at. ``chinese`` False skips the Chinese cues (see :func:`assess`)."""
    found: list[str] = []
    for label, pattern in CUES if chinese else ():
        for m in pattern.finditer(text):
            lo, hi = _sentence(text, m.start(), m.end())
            if (_STORY.search(text, lo, hi) or _NEGATED.search(text, lo, m.start())
                    or _in_past(text, lo, hi, m.start(), m.end())):
                continue
            cue = f"{label}：{m.group(0)}"
            if cue not in found:
                found.append(cue)
    if raw and _LATIN.search(raw):
        raw = raw.lower()
        for label, pattern in ENGLISH_CUES:
            en = pattern.search(raw)
            if en is not None and not _EN_FRAME.search(raw):
                found.append(f"{label}：{en.group(0)}")
    return tuple(found)


def assess(prob: float | None, text: str, raw: str, *, spam: bool = False) -> Urgency:
    """The urgency of one letter from the model's probability (None: no urgency model, the cues
    decide alone), its normalised text and the letter as written.

    The Chinese cues are only read when the model's probability could back one
    (:data:`STRONG_BAR`): the scan costs about 100 µs a letter, a fifth of the classifier's
    budget at 2,000 letters/s, and most letters are far below the bar."""
    if spam:
        return CALM
    chinese = prob is None or prob >= min(STRONG_BAR, CUE_BAR)
    cues = live_cues(text, raw, chinese=chinese)
    return decide(1.0 if prob is None and cues else prob or 0.0, cues, spam=spam)


def decide(prob: float, cues: tuple[str, ...], *, spam: bool) -> Urgency:
    """Urgent when not spam and the model is sure alone, or a live cue has the model's backing
    (:data:`CUE_BAR`; :data:`STRONG_BAR` for the cues in :data:`STRONG`, and none for an English cue: the
    model, trained on Chinese letters, knows too little English to back it)."""
    if spam:
        return CALM
    bar = MODEL_BAR
    for c in cues:
        label, _, word = c.partition("：")
        bar = 0.0 if word.isascii() else min(bar, STRONG_BAR if label in STRONG else CUE_BAR)
    urgent = prob >= bar
    return Urgency(urgent, round(prob, 4), cues if urgent else ())
