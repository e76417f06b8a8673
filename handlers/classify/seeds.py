"""Built-in seed phrases for the labels the report itself does not describe.

The report defines categories 1..10 and their measures; it says nothing about ``other``,
``spam`` or the kind of a message (complaint, inquiry …). These short cue lists let a model
trained on the taxonomy alone still output every label. They are deliberately generic
(cue words, not example messages) and carry little weight once labelled data exists.
"""

from __future__ import annotations

OTHER_SEEDS: tuple[str, ...] = (
    "小区 物业 垃圾 清运 路灯 噪音 停车 公交 线路",
    "学校 学费 学区 入学 医院 挂号 排队 医保 社保 个税 退税",
    "拆迁 征收 补偿 房子 交房 烂尾楼 开发商 公积金",
    "工资 拖欠 招聘 考试 报名 旅游 天气 快递 网购",
    "整改 公布 很好 支持 辛苦了 没什么具体 随便说说",
)
SPAM_SEEDS: tuple[str, ...] = (
    # Only words that genuine feedback rarely uses: a complaint about a loan shark or a
    # fraud must not look like an advert for one.
    "代开发票 点数 优惠 加微信 加QQ 点击链接 免费领取",
    "无抵押 秒批 当天放款 额度 低息 黑户 下款",
    "博彩 娱乐城 送彩金 首充 投注 百家乐 注册送",
    "刷单 日结 佣金 宝妈 月入过万 躺赚 招代理",
    "恭喜 中奖 奖品 限时 抢购 退订 回复TD 包邮",
    "邮箱 停用 验证 账号 密码 升级 存储空间 已满",
    "虚拟货币 比特币 合约 翻倍 稳赚 带单 老师 VIP群",
    "会务费 培训费 报名从速 名额有限 颁发证书 牌匾 征订",
)
KIND_SEEDS: dict[str, tuple[str, ...]] = {
    "complaint": (
        "反映 问题 投诉 太慢 没人管 推诿 不作为 拖着 不满意 凭什么",
        "一直 没有 解决 到底 还要 多久 失望 气愤 形式主义",
    ),
    "suggestion": (
        "建议 希望 能否 可以 考虑 应该 最好 增加 完善 公开",
        "提个 意见 建议 尽快 改进 加强 推广 设立",
    ),
    "report": (
        "举报 实名 收受 好处 红包 贿赂 违规 违纪 领导 干部 民警 法官",
        "举报 某某 公车私用 吃拿卡要 插手 案件 打招呼 请 查处",
    ),
    "inquiry": (
        "请问 吗 ? 怎么 如何 哪里 什么时候 是否 能不能 咨询",
        "想 问 一下 了解 有没有 需要 什么 材料 流程 电话",
    ),
    "praise": (
        "感谢 谢谢 点赞 表扬 辛苦 满意 好评 热心 负责 及时",
        "给 你们 点个赞 非常 感谢 锦旗 为民 服务 真好",
    ),
}
