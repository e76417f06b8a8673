"""Spam precision (issue #19): when unsure, not spam. Contact details, ID numbers, 执行款 and
bank accounts for court-ordered money are what citizens write; a 举报 or an urgent letter is
never auto-spam. All letters here are new material, in no training or eval file."""

from __future__ import annotations

import pytest

NOT_SPAM = [
    "执行款什么时候发？我的电话15862231407，身份证320682198001014417，案号（2022）苏0691执1234号。",
    "我姓赵，法院判决对方赔我医疗费，执行款请打到我的工商银行卡6222021107003345612，"
    "有事打我手机13862541107。",
    "实名举报镇司法所所长收钱办事，我的手机号18951237764，微信同号，愿意当面提供材料。",
    "Please call me at 13812347788 about the enforcement money the court ordered my former "
    "employer to pay. My ID card number is 320602199003150021.",
    "執行款到現在還沒收到，我的聯繫電話是13905134420，身份證號320602197505062213，請盡快回覆。",
    "执行款的事请回电 13951207733 王",
    "我被关在一个厂房里，这是我偷偷用别人的手机发的，手机号17751231234，快来救我",
    "法院的网上立案平台 https://ssfw.example.gov.cn 打不开，我已经试了三天，能不能告诉我别的"
    "立案方式？电话0513-85123456。",
]

SPAM = [
    "关于召开全市政法系统信访工作业务培训会的通知\n各单位：定于下月在厦门召开业务培训会，"
    "会务费每人2980元，结业发证，请扫码缴费，联系人李老师，微信 xf_peixun2025。",
    "【政务邮箱中心】您的邮箱将于今晚停止服务，请立即登录 http://mail-upgrade.example.com "
    "验证密码，逾期账号将被注销。",
    "恭喜贵单位入选“全国法治建设示范单位”名录，请缴纳认证费6800元后领取铜牌和证书，"
    "详询 400-800-1234。",
    "線上娛樂城火爆開業，註冊即送彩金，百家樂真人發牌，提款秒到，加微信了解。",
]


@pytest.mark.parametrize("body", NOT_SPAM)
def test_citizen_letters_with_contact_details_are_not_spam(shipped, body: str) -> None:
    c = shipped.classify("", body)
    assert c.category != "spam", c.top


@pytest.mark.parametrize("body", SPAM)
def test_disguised_spam_is_spam(shipped, body: str) -> None:
    subject, _, text = body.partition("\n") if "\n" in body else ("", "", body)
    assert shipped.classify(subject, text).category == "spam"


def test_a_restricted_letter_is_never_spam(shipped) -> None:
    """Whatever the spam model says, a letter the restriction rules shut is filed as a letter."""
    body = "举报：某派出所民警收了我对手两万元好处费，案子压着不办。加微信 jb123 可联系我。"
    c = shipped.classify("", body)
    assert c.restriction().restricted
    assert c.category != "spam"


def test_an_english_letter_needs_the_cued_bar_to_be_spam() -> None:
    """The model knows little English: a foreign resident's letter that it gives 0.9 spam is
    still filed as a letter, where a Chinese one as sure would be spam."""
    import numpy as np

    from handlers.classify.decide import CUED_SPAM_BAR, decide_many

    labels = ["1", "other", "spam"]
    probs = np.array([[0.02, 0.08, 0.90], [0.02, 0.08, 0.90], [0.0, 0.01, 0.99]])
    kinds = np.array(["complaint", "inquiry", "report", "spam"])
    kind_probs = np.tile([0.3, 0.3, 0.0, 0.4], (3, 1))
    items = [("", "Help! I have waited at the hospital for six hours. Who is in charge here?"),
             ("", "限时特惠全场一折起，点击链接领取优惠券，回复TD退订"),
             ("", "Cheap flights and hotel deals, book now and save 70 percent, click the link")]
    chars = [body.lower() for _, body in items]
    words = [" ".join(body.split()) for _, body in items]
    picks = [d.pick[0] for d in decide_many(labels, probs, kinds, kind_probs, None, 0.8,
                                            (chars, words), items)]
    assert picks == ["other", "spam", "spam"]
    assert 0.9 < CUED_SPAM_BAR <= 0.99
