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
(:data:`MODEL_BAR`) or a live cue is backed by at least :data:`CUE_BAR` of the model. Letters
often say it indirectly (putting affairs in order, twenty households meeting at an office door on
Monday, "就说是查燃气的", "天黑路滑" said of a judge): :data:`INDIRECT_GROUPS` holds those
warning signs of crisis-line practice, which a harmless letter can also use (a pet given away
before a move abroad), so they need more of the model (:data:`INDIRECT_BAR`). The
score staff see is the model's probability; the cues say why. No maintained library recognises Chinese crisis language, hence the lists below;
they are written from what such letters say in general, not from the project's samples.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from .firstchar import FirstCharPattern

# The bars were chosen by 5-fold cross-validation over the corpus (README, "Urgent letters"): the
# lowest model bar whose CV precision stays above 92 %, then the cue bars that keep it there.
MODEL_BAR = 0.75  # the model alone
CUE_BAR = 0.2  # the model behind a live cue
STRONG_BAR = 0.08  # the model behind a live cue of self-harm, a threat or a planned gathering
STRONG = ("轻生", "暴力威胁", "聚集上访")
INDIRECT_BAR = 0.2  # the model behind an indirect warning sign (INDIRECT_GROUPS)
ENGLISH_INDIRECT_BAR = 0.05  # the model behind an indirect English one
# Close to a bar (under DOUBT times it) the model barely backs a cue, and a calm letter's one
# alarm word (a roof, 不想活 said of a heat wave, a farewell at a retirement) reaches it as
# often as an urgent letter's: there the context decides, and one Chinese cue alone is not
# enough; a second one, of any kind, is (the urgent letters that far down say several things).
# 2.0 cost the corpus CV four urgent letters, 1.5 none (README, "Urgent letters").
DOUBT = 1.5

# Each group: a label for staff, then the wording. Alternatives are general phrasings, grouped
# by what they say; the character text they run on is simplified, lower-case and NFKC-folded.
CUE_GROUPS: tuple[tuple[str, str], ...] = (
    ("轻生", r"跳楼(?!价|大甩卖)|跳河|跳江|跳桥|跳海|跳下去|从.{0,6}跳下|"
             r"楼顶|天台|喝农药|农药|安眠药|老鼠药|敌敌畏|百草枯|割腕|自残|上吊|烧(?:了)?(?:木)?炭|自杀|自尽|轻生|寻短见|想不开|不想活|活不下去|活着(?:没|有什么)"
             r"意思|没意义|一了百了|一死了之|了断|结束(?:这一切|生命|自己)|遗书|后事|告别|走之前|"
             r"不想(?:再)?醒|死在(?:那|这|门口|法院|你们)|逼死|等(?:着)?那一天|"
             r"拖累|说声再见|对不起(?:大家|宝宝|你们)|(?:不想|不要)(?:再)?醒"),
    ("暴力威胁", r"同归于尽|鱼死网破|拼了(?=[吧啊,，。！!？?\n]|$)|砍死|砍人|捅(?:死|人|谁)|"
                r"杀了(?=他|她|你|我|那|这|全|[吧,，。！!？?\n]|$)|杀我|弄死|打死|解决掉|"
                r"打断.{0,4}腿|(?:拿|拎|提|举)(?:着)?(?:一把)?(?:刀|剪刀|斧头|钢管|铁棍)|带(?:着)?刀|菜刀|一把刀|汽油|放火|点(?:一)?把火|烧了(?=他|她|你|我|[吧,，。！!？?\n]|$)|"
                r"把[^。！？]{0,8}炸(?:了|掉)|炸(?:死|掉|了)(?:你们|他们|他|她|这|那|整)|炸药|报复社会|(?:去|要|就)报复|算账|收拾|自己(?:讨|的办法)|住哪|要你好看|让.{0,3}好看|说到做到|有枪|"
                # 出人命 foretold (会出人命, 迟早出人命) is a fear of an accident, not a threat
                r"等着瞧|等着看(?=[吧好,，。！!？?\n]|$)|(?<!会)(?<!可能)(?<!迟早)(?<!早晚)出(?:了)?人命"),
    ("聚集上访", r"(?:集体|一起|全体|全村|联名|组织|约好|商量好|包车|报名)[^。！？]{0,24}"
                r"(?:上访|去.{0,8}(?:政府|市委|区委|法院|政法委|信访|北京|省里|天安门)|堵门|"
                r"堵路|拉横幅|打横幅|横幅|静坐|下跪|讨说法|抗议|直播)|"
                r"集体(?:反映|请愿|讨薪|维权|上访)|"
                r"(?:政府|市委|区委|法院|政法委|信访局|住建局|街道办)(?:大)?门口[^。！？]{0,12}"
                r"(?:静坐|下跪|横幅|讨(?:个)?说法|抗议|不走|集体)"),
    ("正在发生的危险", r"家暴|打我|打她|打孩子|掐|踹|砸(?:门|东西)|反锁|躲在|(?:喊|叫|哭着|喊着)救命|救救|求救|解救|"
                     r"(?<![相有机])(?:关在|被关)(?!门外|[^。!?]{0,4}(?:看守所|拘留所|监狱|戒毒所|牢里|号子))|锁在|不让.{0,4}(?:出门|回家|下车)|没回(?:家|来)|失联|"
                     r"(?:她|他|孩子|儿子|女儿|妻子|老婆|丈夫|老公|妈|爸|父亲|母亲|老人)[^。!?;]{0,14}"
                     r"联系不上|"
                     r"关机|不见了|找不到人|走失|失踪|离家出走|抱上车|拉进(?:了)?(?:屋|房|车|后屋)|跟踪(?!监控|画面|回访|服务|调查|督办|问效|报道|落实)|"
                     r"拐(?:走|卖|骗)|还没回(?:家|来)|没人应|没(?:有)?动静|"
                     r"传销|被控制|逼着|烫|青紫"),
    ("正在发生的犯罪", r"(?:正在|现在|还在|刚才|今晚|今天|这会儿|此刻|就是现在)[^。！？]{0,16}(?:偷|倒|偷排|乱排|排污|挖|打架|"
                     r"诈骗|转移|搬|销毁|赌|砸|埋|乱挥|闯)|(?:要|准备|想)跑路|明天就走|"
                     r"买了[^。！？]{0,6}机票|抓个现行|放哨|还(?:停)?在那(?:里)?没走|还没走"),
)
# Where a letter may gather people: government offices, courts, police, petition bureaus, Beijing.
_OFFICE = (r"(?:政府|市委|区委|县委|省委|省里|法院|中院|检察院|公安局|派出所|政法委|信访局|信访办|"
           r"住建局|人社局|街道办|街道|镇上|管委会|大院|北京)")
# A number of people: 二十几个人, 一百多户, 几十个, 68户, 一百来号人.
_HEADS = r"(?:[0-9]+|[一二两三四五六七八九十百千几]+)(?:多|来|几)?(?:个人|个|号人|人|户|名|位|家)"
_WHEN = (r"(?:明天|后天|明早|今晚|下周.?|周[一二三四五六日末]|星期.|礼拜.|月底|月初|"
         r"[0-9]{1,2}(?:号|日)|早上|上午|下午|一早|一大早)")

# The indirect warning signs of crisis-line practice: no alarm word, so each needs more of the
# model's backing (:data:`INDIRECT_BAR`) than a plain cue. Same labels as :data:`CUE_GROUPS`.
INDIRECT_GROUPS: tuple[tuple[str, str], ...] = (
    # Putting affairs in order, a farewell, the means at hand, escalating self-injury, giving up.
    ("轻生", r"(?:猫|狗|宠物|东西|衣服|首饰|存款|存折|银行卡|账本|房子)[^。!?]{0,8}(?:送给|送人|托付|留给|交给)|"
             r"(?:托付给|拜托|托)[^。!?]{1,8}(?:照顾|照看|养大|抚养|养)|"
             r"(?:钱|账|债|欠款)[^。!?]{0,4}(?:都|也|全)?(?:还清|结清|还上)了|"
             r"密码是|(?:放|压|藏|装)在[^。!?]{0,8}(?:抽屉|枕头|床头|柜|信封|鞋柜)|"
             r"我走(?:了)?(?:以后|之后|后)|我不在了|我死(?:了)?(?:以后|之后|后)|"
             r"(?:以后|再)(?:也)?不会(?:再)?(?:麻烦|打扰|找)(?:你们|大家)|给(?:大家|你们)添[^。!?]{0,6}麻烦|"
             r"下辈子|来世|永别|再见了|别(?:来)?找我|不要找我|谁(?:也)?别(?:来)?找|我[^。!?]{0,8}不(?:会)?回来了|"
             r"(?:等|撑|熬|活)不到[^。!?]{0,10}了|撑不(?:下去|住)|熬不(?:下去|住)|不想(?:再)?(?:撑|熬)|"
             r"活够了|活腻了|不(?:想|肯|愿)(?:再)?(?:看病|治了|吃药|吃饭|住院)|放弃治疗|"
             r"命[^。!?]{0,4}(?:到这|到头|不要了)|该(?:走|结束|终结|了结)了|用不(?:着|上)了|你们赢了|"
             r"(?:你们|您|大家)(?:看到|收到|读到)(?:这|此)|最后一(?:个晚上|晚|天|面|句)|最后几句|"
             r"攒[^。!?]{0,8}(?:药|片|瓶)|药[^。!?]{0,4}攒|吃了一(?:把|瓶|大把)|把[^。!?]{0,4}药[^。!?]{0,2}吃了|"
             r"买了[^。!?]{0,4}(?:绳|木炭|炭)|(?:划|割)(?:手腕|手臂|胳膊|口子)|(?:划|割)(?:得)?(?:深一点|更深)|"
             r"手腕上|一起走(?:算了|吧)|(?:去|到)(?:江|河|海|湖)边[^。!?]{0,12}(?:不回|再也|最后|别找)|这辈子[^。!?]{0,4}(?:太累|到头|就这样)"),
    # A gathering planned at an office without the word 集体: people, a time and a place, an
    # arrangement in a group chat, placards, refusing to leave.
    ("聚集上访", r"群里[^。!?]{0,8}(?:定了|约好|说好|讲好|商量好|在组织|通知|集合)[^。!?]{0,30}"
                + _OFFICE + "|"
                r"(?:约好|约定|说定|讲好|说好|商量定|定好|都定)了?[^。!?]{0,24}(?:去|到|坐)[^。!?]{0,10}"
                + _OFFICE + "|" + _OFFICE + r"[^。!?]{0,8}(?:门口|门前|大门|前面|广场|大院|大厅)"
                r"[^。!?]{0,6}(?:集合|集中|碰头|坐着|静坐|守着|讨(?:个)?说法)|"
                r"人手一(?:张|块|条|面)|举(?:着)?牌子|(?:牌子|横幅|标语)[^。!?]{0,4}(?:做|印|写)好|"
                r"当面(?:来)?(?:监督|给说法|答复)|"
                r"(?:拿不到|不给|要不到|不还)[^。!?]{0,6}(?:就)?不(?:走|回家|起来|散)|不给(?:个)?说法[^。!?]{0,4}"
                r"不(?:走|回|散)|(?:包|订|坐)(?:了)?[^。!?]{0,4}(?:大巴|车)[^。!?]{0,10}(?:去|到)[^。!?]{0,6}"
                + _OFFICE + "|" + _HEADS + r"[^。!?]{0,20}" + _WHEN + r"[^。!?]{0,16}(?:去|到|在)[^。!?]{0,8}"
                + _OFFICE + "|" + _WHEN + r"[^。!?]{0,16}" + _HEADS + r"[^。!?]{0,16}(?:去|到|在)[^。!?]{0,8}"
                + _OFFICE),
    # A crime happening while the writer watches: a break-in, telecom fraud on the line, a fight.
    ("正在发生的犯罪", r"撬(?:门|锁|窗)|在撬|撬开|安全账户|"
                     r"(?:视频|电话)[^。!?]{0,10}(?:公安|警察|警官|检察|穿警服)|"
                     r"(?:公安|警察|检察官|法官)[^。!?]{0,10}(?:让|叫|要)[^。!?]{0,8}(?:转账|转钱|汇款|别挂|取钱)|"
                     r"(?:去|在|往)银行(?:取钱|转账|汇款|走)|打起来了|打群架|地上[^。!?]{0,3}血|"
                     r"(?:放风|望风)|剪锁|(?:偷|撬)[^。!?]{0,4}(?:电瓶|电动车|车窗)"),
    # Danger the writer cannot say aloud; a child or an old person alone; a sudden silence.
    ("正在发生的危险", r"不方便(?:打|接|说)(?:电话|话)|不敢(?:打|接)电话|不敢出声|"
                     r"(?:他|她|人)(?:就)?在(?:客厅|门外|门口|隔壁)|就说是(?:查|送|修|收)|"
                     r"发完(?:就|我就)?删|(?:偷偷|悄悄)(?:发|打|给我)|查(?:我)?(?:的)?手机|"
                     r"一个人(?:在家|在屋)|(?:几|两|三|四|五)天(?:都)?没(?:回来|回家|见|开门|动静)|"
                     r"煤气灶|尖叫|突然(?:就)?没(?:了)?(?:声|动静)|(?:一股|有股)[^。!?]{0,2}(?:煤气|燃气|液化气|天然气|焦|糊|烟|血腥|农药|汽油|怪|刺鼻|化学)味|"
                     r"(?:扣|收|拿走|没收)(?:了)?[^。!?]{0,4}(?:身份证|护照)|(?:身份证|护照)[^。!?]{0,6}(?:被)?(?:扣|收走|拿走|没收)|"
                     r"快(?:点)?(?:来人|派人|过来)|赶(?:快|紧)(?:来人|派人)"),
    # A threat said sideways: take care on the way home, we all go down together, I know his routine.
    ("暴力威胁", r"(?:让|叫|告诉|转告)(?:他|她|那个|姓)[^。!?]{0,16}(?:小心|天黑路滑|注意(?:点|安全))|"
                r"你[^。!?]{0,6}(?:小心(?:点|些|一点)|天黑路滑)|"
                r"小心(?:你|他|她)的?(?:家人|孩子|老婆|腿|命)|一起完蛋|大家[^。!?]{0,3}完蛋|一起(?:死|陪葬)|陪葬|"
                r"(?:背|扛|拎|带|抱)(?:着|个|一|上)?[^。!?]{0,3}(?:煤气|液化气|油桶|炸药|雷管)|"
                r"别(?:怪我|说我没)|后果[^。!?]{0,4}(?:自负|负责)|冤有头债有主|(?:他|她|你)跑不了|记住(?:你|他|她)了|"
                r"(?:知道|打听)[^。!?]{0,6}(?:住哪|住在|哪个小区|几点下班|走哪条路|在哪(?:上学|上班))|"
                r"刀[^。!?]{0,4}磨好|磨(?:好)?(?:了)?刀|让(?:他|她)知道|"
                r"(?:跟|盯)(?:在|着)(?:他|她)"),
)
_ENGLISH = (
    ("轻生", r"suicid\w*|kill(?:ing)? myself|end(?:ing)? my life|goodbye letters?|"
             r"can'?t take it any ?more|before i go|(?:don'?t|do not) want to live"),
    ("暴力威胁", r"threaten(?:s|ed|ing)? to (?:kill|hurt|burn|beat|stab|shoot)|death threats?|"
                r"kill (?:me|you|him|her|them|us)|(?:has|have|had|with|carr(?:y|ies|ying)) a "
                r"(?:gun|knife)"),
    # Bare "missing", "help me" or "right now" are everyday English ("a missing document");
    # each cue here names the danger itself.
    ("正在发生的危险", r"beat(?:ing|s) (?:me|her|him|my|the)|scream(?:s|ing)? for help|"
                     r"(?:is|are|went|gone|been|has been|have been) missing|missing (?:child|person|"
                     r"since)|kidnap\w*|locked (?:in|up)"),
    ("正在发生的犯罪", r"breaking into"),
)
_ENGLISH_INDIRECT = (
    ("轻生", r"by the time (?:anyone|you|someone) reads? this|won'?t need [^.]{0,40} any ?more|"
             r"(?:given|gave) (?:away )?my (?:dog|cat|things)|paid back everything|"
             r"i (?:will|'ll) be gone|nothing left to live for"),
    ("正在发生的危险", r"locked me (?:in|up)|(?:took|taken|kept) my passport|held (?:by|against|captive)|"
                     r"can only use this phone"),
    ("正在发生的犯罪", r"cutting the (?:chain|lock)|break(?:ing)? in"),
    ("暴力威胁", r"watch (?:his|her|your) back|know where (?:he|she|you) lives?"),
)
# Digits are written [0-9], not \d: the text is NFKC-folded, and a category hides a pattern's
# first characters from the scan (firstchar.py).
Cues = tuple[tuple[str, FirstCharPattern], ...]
CUES: Cues = tuple((label, FirstCharPattern(pattern)) for label, pattern in CUE_GROUPS)
CUES_STRONG: Cues = tuple((label, pattern) for label, pattern in CUES if label in STRONG)
INDIRECT_CUES: Cues = tuple((label, FirstCharPattern(pattern)) for label, pattern in INDIRECT_GROUPS)
ENGLISH_CUES: Cues = tuple((label, FirstCharPattern(r"(?<![a-z])(?:" + p + r")(?![a-z])"))
                           for label, p in _ENGLISH)
ENGLISH_INDIRECT: Cues = tuple((label, FirstCharPattern(r"(?<![a-z])(?:" + p + r")(?![a-z])"))
                               for label, p in _ENGLISH_INDIRECT)
# Any English cue at all: one scan that spares a letter with Latin letters but no cue (most of
# them: a QQ number, "APP", an English word) the eight scans above and :data:`_EN_FRAME`'s.
_ENGLISH_ANY = FirstCharPattern(r"(?<![a-z])(?:" + "|".join(p for _, p in _ENGLISH + _ENGLISH_INDIRECT)
                                + r")(?![a-z])")

# A sentence that frames its alarm word as somebody else's story or advice.
_STORY = re.compile(
    r"新闻|报道|报导|小说|电视剧|剧里|剧中|追剧|电影|故事|情节|视频(?:里|中|上)|"
    r"(?:看|刷|发|转|拍)[^。！？!?]{0,4}视频|课题|调研|宣传|论坛|帖子|"
    r"案例|提前了解|想了解|了解一下|怎么认定|应该(?:找|打|怎么)|防溺水|防拐|预防|"
    r"(?:很多|有些|有的)人(?:会|都会|遇到)|不是说现在|"
    r"以后(?:要是|万一)?(?:遇到|碰到)|(?:遇到|碰到)(?:这种|这样|类似)"
)
# A story told (news, a novel, a film) frames the rest of its paragraph too, until a "now".
_TOLD = re.compile(r"新闻|报道|报导|小说|电视剧|电影|故事|视频(?:里|中|上)|"
                   r"(?:看|刷|发|转|拍)[^。！？!?]{0,4}视频")
# A hypothetical: "如果邻居家发生家暴" frames its sentence, but not the writer's own
# consequence after it ("要是再不给钱，我就一把火…" is a threat).
_IF = re.compile(r"假如|如果|要是|万一")
_THEN = re.compile(r"[,，;；]\s*(?:那|那么|那我)?(?:我|我们|老子)?[^,，。！？!?]{0,4}就")
# One that puts it in the past, unless it also says the danger is now or coming. A past marker
# at the head of a paragraph frames the paragraph (a story told as background) until a "now".
# Words that say a danger has ended: before a cue they put it in the past, after it they end it.
_ENDED = (r"后来|已经(?:解决|过去|好了|抢救|处理|被解救|被抓|脱险|找到|回来)|幸好|幸亏|"
          r"被抓|抓了|判了|被解救")
_PAST = re.compile(r"去年|前年|以前|曾经|前段时间|前些(?:天|日子)|前几天|前阵子|当时|那天|那晚|"
                   r"那个晚上|有一(?:次|回|天)|[一二三四五六七八九十\d]{1,2}月(?:份)?的(?:一天|一个(?:晚上|早上|下午|夜里)|某天)|当年(?!的)|那时|那年|那一年|那次|上次|上个月|上周|上星期|几年前|"
                   r"上个?(?:星期|礼拜|周)[一二三四五六日天末]?|(?:今年|去年)(?:春天|夏天|秋天|冬天|年初|初|上半年)|"
                   r"前几年|年前|(?:19|20)\d\d年(?!\d{1,2}月)|(?:去|到|来|找|闹|上访|反映|聚集|跳)过|"
                   r"想过|有过|动过|一度|差点|打掉|审判结果|" + _ENDED)
# A danger said to be over after it: in its sentence, or anywhere later in the letter with
# nothing "now" in between (a child lost, then "最后在公园里找到了他"; a rescue, then "现在
# 已经康复出院").
_OVER = re.compile(_ENDED + r"|没事了|解救(?:了)?出来")
_RESOLVED = re.compile(r"(?<![没不])(?:找到了|找回(?:来)?了|领回来了|平安(?:回|无事)|虚惊一场|没事了|"
                       r"脱险|被解救|解救(?:了)?出来|抢救过来|康复|出院了|抓到了|被抓|抓获|判了|"
                       r"已经(?:解决|过去|好了|处理|回来|找到)|什么事都没有|好好的)")
_NOW = re.compile(r"现在|正在|还在|刚才|今天|今晚|明天|马上|这次|下周|本周|周[一二三四五六日末]|"
                  r"月底|又|再|昨天|昨晚|这几天|这两天|这个月|最近")
_NOW_STRICT = re.compile(r"正在|还在|刚才|今晚|明天|马上|此刻|这会儿|到现在")
_NEGATED = re.compile(r"(?:不会|不要|不能|没有|并不|决不|绝不|不是|别|防止|防|避免|以免)\S{0,2}$")
# Words of mourning said of someone already dead (the will a grandfather left) are no farewell.
_MOURNING = frozenset(("后事", "遗书", "告别", "走之前"))
_DEATH = re.compile(r"去世|过世|逝世|病逝|病故|离世|走得很安详|享年|追悼|火化")
# A hope that the authorities keep their word ("希望你们说到做到") is no threat.
_WISH = re.compile(r"希望|盼望|期待|期望|请你们|要求你们")
# A cue whose subject is a thing, a business or an animal (车又不见了, 好几家店都撑不下去了,
# 手机锁在柜子里) is not about a person. Read in the cue's clause, before it; a person there wins,
# unless only as an owner before a 的 (我的电瓶车又不见了, 我们那条街的几家饭馆).
_THING = re.compile(r"店|馆|铺|公司|厂|企业|生意|项目|工程|车|手机|钥匙|钱包|包裹|快递|证件|文件|"
                    r"材料|系统|网站|门禁|电脑|狗|猫|宠物|房子|房梁|庄稼|货物|设备|机器|行业|工地|"
                    r"超市|市场|平台|账户|资金|订单|经济|行情|[几两三四五六七八九十多好]家(?!人|属|长)")
_PERSON = re.compile(r"我|你|他|她|人|孩子|儿子|女儿|老人|老公|老婆|丈夫|妻子|妈|爸|父|母|哥|姐|弟|"
                     r"妹|爷|奶|外公|外婆|家属|工人|村民|业主|学生|朋友|同事|邻居")
_UNREACHABLE = re.compile(r"关机|联系不上|失联|没人(?:接|应)")
_CLAUSE = re.compile(r"[,，、：:]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_ASPECT = "了着过"
# A roof or a poison is a cue only with someone's act beside it (爬上天台, 身上带了一瓶农药,
# 安眠药攒了一抽屉), not as a building's part, farm work or a prescription (楼顶漏水, 农药残留,
# 医生开了安眠药). Checked after the match: a pattern starting with such common verbs would
# make the first-character scan (firstchar.py) stop at every 去 and 上 of a letter.
_MEANS = frozenset(("楼顶", "天台", "农药", "安眠药", "老鼠药"))
_ACT_BEFORE = re.compile(r"(?:爬|站|坐|去|上|到|跑|喝|吞|吃|带|买|藏|备|拿|攥|揣)[^。！？!?,，]{0,6}$")
_ACT_AFTER = re.compile(r"(?:上|边)?(?:坐|站|不下|边上)|[^。！？!?]{0,6}?(?:喝|吞|吃下|攒|藏|一抽屉|一瓶)")
_ENDS = "。！？!?\n；;"
_LATIN = re.compile(r"[A-Za-z]")
_EN_FRAME = re.compile(r"(?<![a-z])(?:news|novel|movie|film|story|tv series|years ago|"
                       r"last (?:year|month|week|spring|summer|autumn|fall|winter))"
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


_ENDS_RE = re.compile("[" + re.escape(_ENDS) + "]")
# A paragraph break: the normalised text has folded line breaks into a space, which Chinese
# text has nowhere else but beside Latin words (gone from it too) and digits.
_BREAK = re.compile(r"(?<=[^\sA-Za-z0-9]) (?=[^\sA-Za-z0-9])")


class _Sentences:
    """The sentence and paragraph bounds of one text, found in one pass and looked up by
    bisection (a cue word can match dozens of times in a long letter), with each sentence's
    story verdict computed once; and, from the letter's jieba words, where a word goes on."""

    def __init__(self, text: str, words: str = "") -> None:
        self.text = text
        self.ends = [m.start() for m in _ENDS_RE.finditer(text)]
        self._breaks: list[int] | None = None  # paragraph breaks, found on first use
        self._resolved: list[int] | None = None  # where the letter says a danger is over
        self.story: dict[int, bool] = {}
        self.words = words
        self._inside: set[int] | None = None

    def around(self, start: int, end: int) -> tuple[int, int]:
        """Bounds of the sentence around ``text[start:end]``."""
        i = bisect_left(self.ends, start)
        lo = self.ends[i - 1] + 1 if i else 0
        j = bisect_left(self.ends, end, i)
        return lo, self.ends[j] if j < len(self.ends) else len(self.text)

    def paragraph(self, start: int) -> tuple[int, int]:
        """Bounds of the paragraph around ``text[start]``."""
        if self._breaks is None:
            self._breaks = [m.start() for m in _BREAK.finditer(self.text)]
        breaks = self._breaks
        i = bisect_left(breaks, start)
        return breaks[i - 1] + 1 if i else 0, breaks[i] if i < len(breaks) else len(self.text)

    def resolved_after(self, at: int) -> int | None:
        """Where the letter first says a danger is over (:data:`_RESOLVED`) at or after ``at``."""
        if self._resolved is None:
            self._resolved = [m.start() for m in _RESOLVED.finditer(self.text)]
        i = bisect_left(self._resolved, at)
        return self._resolved[i] if i < len(self._resolved) else None

    def is_story(self, lo: int, hi: int) -> bool:
        if lo not in self.story:
            self.story[lo] = _STORY.search(self.text, lo, hi) is not None
        return self.story[lo]

    def splits_a_word(self, start: int, end: int) -> bool:
        """Whether the cue ``text[start:end]``, a verb and its aspect particle (烧了, 拼了),
        takes its verb from the end of one of jieba's ordinary words (烧了 in 发烧了, 拼了 in
        打拼了). Other cues that begin or end inside a word are left alone: the segmenter
        joins a cue with its neighbour as often as not (家住|哪, 烟头烫, 汽油桶, 放火烧). The
        words are the classifier's own segmentation of the letter, aligned here once."""
        if not self.words:
            return False
        if self._inside is None:
            inside: set[int] = set()
            at = 0
            for word in self.words.split():
                if not _CJK.match(word):
                    continue
                i = self.text.find(word, at)
                if i < 0:
                    continue
                inside.update(range(i + 1, i + len(word)))
                at = i + len(word)
            self._inside = inside
        return start in self._inside


def _in_past(text: str, sentences: _Sentences, lo: int, hi: int, at: int, end: int,
             par: tuple[int, int]) -> bool:
    """Whether the cue ``text[at:end]`` (sentence ``text[lo:hi]``, paragraph ``par``) is told
    in the past: a past marker before it in its paragraph or ending with it ("已经被解救") with
    no "now" between them ("去年就判了, 我明天去…" is live); or, after it, one saying the danger
    is over, in its sentence ("…传销,已经被解救回来了") or later in the letter with nothing
    happening now in between ("孩子不见了…最后在公园里找到了他")."""
    before = [p.end() for p in _PAST.finditer(text, par[0], end)]
    if before and not _NOW.search(text, before[-1], at):
        return True
    after = _OVER.search(text, at, hi)
    if after is not None and not _NOW.search(text, at, after.start()):
        return True
    later = sentences.resolved_after(at)
    return later is not None and not _NOW_STRICT.search(text, end, later)


def _framed(text: str, sentences: _Sentences, lo: int, hi: int, start: int,
            par: tuple[int, int]) -> bool:
    """Whether the sentence ``text[lo:hi]`` or its paragraph frames the cue at ``start`` as
    somebody else's story, advice or a hypothetical (but a threat after "要是…, 我就" is live)."""
    if sentences.is_story(lo, hi):
        return True
    told = [m.end() for m in _TOLD.finditer(text, par[0], lo)]
    if told and not _NOW.search(text, told[-1], start):
        return True
    first = _IF.search(text, lo, hi)
    if first is None:
        return False
    return first.start() >= start or not _THEN.search(text, first.end(), start)


def _about_a_thing(text: str, lo: int, start: int, end: int) -> bool:
    """Whether the cue's clause names a thing, a business or an animal and no person before
    it: 车又不见了, 好几家店都快撑不下去了 (a phone that is off still means its owner; a cue
    that names its thing itself, 存款都还清了, or a smell is about a thing by design)."""
    clause = max((m.end() for m in _CLAUSE.finditer(text, lo, start)), default=lo)
    head = text[clause:start]
    things = [m.start() for m in _THING.finditer(head)]
    word = text[start:end]
    if not things or _UNREACHABLE.fullmatch(word) or _THING.search(word) or "味" in word:
        return False
    owner = head.rfind("的", 0, things[-1])
    return _PERSON.search(head, owner + 1) is None


def _live(text: str, cues: Cues, sentences: _Sentences | None = None) -> list[str]:
    """``label：word`` for each match of ``cues`` in ``text`` that is not part of an ordinary
    word, whose subject is not a thing, whose sentence or paragraph does not frame it as news,
    fiction, a hypothetical, a wish, a death already mourned or the past, and that is not
    negated. A cue already found live is not looked at again."""
    found: list[str] = []
    sentences = sentences or _Sentences(text)
    for label, pattern in cues:
        for start, end in pattern.spans(text):
            word = text[start:end]
            cue = f"{label}：{word}"
            if cue in found:
                continue
            lo, hi = sentences.around(start, end)
            par = sentences.paragraph(start)
            if (_NEGATED.search(text, lo, start) or _framed(text, sentences, lo, hi, start, par)
                    or _in_past(text, sentences, lo, hi, start, end, par)
                    or (label != "正在发生的犯罪" and _about_a_thing(text, lo, start, end))
                    or (word in _MOURNING and _DEATH.search(text, par[0], par[1]))
                    or (label == "暴力威胁" and _WISH.search(text, lo, start))
                    or (word in _MEANS and not _ACT_BEFORE.search(text, max(lo, start - 8), start)
                        and not _ACT_AFTER.match(text, end, hi))
                    or (end - start == 2 and word[1] in _ASPECT
                        and sentences.splits_a_word(start, end))):
                continue
            found.append(cue)
    return found


def _english(raw: str, cues: Cues) -> list[str]:
    """The first match of each English cue in ``raw`` (lower-cased), none in a framed letter."""
    if _EN_FRAME.search(raw):
        return []
    return [f"{label}：{raw[span[0]:span[1]]}" for label, pattern in cues
            if (span := pattern.search(raw)) is not None]


def _scan(text: str, raw: str, *, plain: bool, indirect: bool,
          sentences: _Sentences | None = None) -> tuple[list[str], list[str]]:
    """(plain cues, indirect cues) of a letter; ``plain``/``indirect`` False skips the Chinese
    cues of that kind (see :func:`assess`). Each pattern scans the whole text once (most letters
    have no cue at all); only a match has its sentence looked at."""
    if sentences is None and (plain or indirect):
        sentences = _Sentences(text)
    found = _live(text, CUES, sentences) if plain else []
    weak = _live(text, INDIRECT_CUES, sentences) if indirect else []
    return _with_english(found, weak, raw)


def _with_english(found: list[str], weak: list[str], raw: str) -> tuple[list[str], list[str]]:
    """``found`` and ``weak`` with the English cues of ``raw`` added."""
    if raw and _LATIN.search(raw) and _ENGLISH_ANY.search(raw := raw.lower()) is not None:
        found += _english(raw, ENGLISH_CUES)
        weak += _english(raw, ENGLISH_INDIRECT)
    return found, [c for c in weak if c not in found]


def live_cues(text: str, raw: str = "", *, chinese: bool = True, words: str = "") -> tuple[str, ...]:
    """``label：word`` for every cue, plain (:data:`CUE_GROUPS`) or indirect
    (:data:`INDIRECT_GROUPS`), in ``text`` (normalised character text, which has lost its Latin
    letters) whose sentence does not frame it as news, fiction, a hypothetical or the past, and
    that is not negated; English cues are read from ``raw``, the letter as written. ``chinese``
    False skips the Chinese cues; ``words``, the letter's jieba words, let a cue that is part of
    an ordinary word be told apart."""
    found, weak = _scan(text, raw, plain=chinese, indirect=chinese,
                        sentences=_Sentences(text, words) if chinese else None)
    return tuple(found + weak)


def assess(prob: float | None, text: str, raw: str, *, spam: bool = False,
           words: str = "") -> Urgency:
    """The urgency of one letter from the model's probability (None: no urgency model, the plain
    cues decide alone), its normalised text, the letter as written and (optional) its jieba
    words, which tell a cue that is part of an ordinary word (发烧了) from the cue itself.

    The Chinese cues are only read when the model's probability could back one
    (:data:`STRONG_BAR`, :data:`INDIRECT_BAR`): the scan costs about 100 µs a letter, a fifth of
    the classifier's budget at 2,000 letters/s, and most letters are far below the bars."""
    if spam:
        return CALM
    plain = prob is None or prob >= min(STRONG_BAR, CUE_BAR)
    indirect = prob is not None and prob >= INDIRECT_BAR
    # Below CUE_BAR only a strong cue (or an English one) can make the letter urgent: look for
    # those first, and for the rest (reported to staff with them) only when one is found. Same
    # result, a third of the scan for the many letters in this band.
    sentences = _Sentences(text, words) if plain or indirect else None
    if plain and prob is not None and prob < min(CUE_BAR, INDIRECT_BAR):
        strong = _live(text, CUES_STRONG, sentences)
        if not strong and _with_english([], [], raw) == ([], []):
            return _decide(prob, [], [])
        indirect = bool(strong)  # a second cue of any kind may back a strong one (DOUBT)
    found, weak = _scan(text, raw, plain=plain, indirect=indirect, sentences=sentences)
    if prob is None:
        return decide(1.0, tuple(found), spam=False) if found else CALM
    return _decide(prob, found, weak)


def decide(prob: float, cues: tuple[str, ...], *, spam: bool) -> Urgency:
    """Urgent when not spam and the model is sure alone, or a live cue has the model's backing
    (:data:`CUE_BAR`; :data:`STRONG_BAR` for the cues in :data:`STRONG`, and none for an English
    cue: the model, trained on Chinese letters, knows too little English to back it)."""
    if spam:
        return CALM
    return _decide(prob, list(cues), [])


def _decide(prob: float, found: list[str], weak: list[str]) -> Urgency:
    """:func:`decide` with indirect cues too, each backed by :data:`INDIRECT_BAR` (an English
    one by :data:`ENGLISH_INDIRECT_BAR`); a Chinese cue under :data:`DOUBT` times its bar
    counts only beside another cue."""
    alone = len({c.partition("：")[2] for c in found + weak}) < 2
    bar = MODEL_BAR
    for c in found:
        label, _, word = c.partition("：")
        if word.isascii():
            bar = 0.0
            continue
        cue_bar = STRONG_BAR if label in STRONG else CUE_BAR
        if not (alone and prob < DOUBT * cue_bar):
            bar = min(bar, cue_bar)
    for c in weak:
        if c.partition("：")[2].isascii():
            bar = min(bar, ENGLISH_INDIRECT_BAR)
        elif not (alone and prob < DOUBT * INDIRECT_BAR):
            bar = min(bar, INDIRECT_BAR)
    urgent = prob >= bar
    cues = tuple(found + weak)
    return Urgency(urgent, round(prob, 4), cues if urgent else ())
