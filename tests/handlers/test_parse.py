"""handlers.parse on messages the development corpus does not pin: reply splitting, charsets of
rarer clients, attachment names, oversized mail, uuencode, hostile input."""

from __future__ import annotations

import base64
import time

from handlers.parse import parse_message, to_json


def mail(body: bytes, *, headers: str = "", ctype: str = "text/plain; charset=utf-8",
         cte: str = "8bit", subject: str = "测试") -> bytes:
    head = (f"From: 市民 <citizen@example.com>\r\nTo: jiandu@zfw.example\r\n"
            f"Subject: {subject}\r\nDate: Tue, 01 Dec 2026 10:00:00 +0800\r\n"
            f"Message-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n{headers}"
            f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
    return head.encode("utf-8") + body


def multipart(*parts: bytes, sub: str = "mixed") -> bytes:
    body = b"".join(b"--BND\r\n" + p + b"\r\n" for p in parts) + b"--BND--\r\n"
    return mail(body, ctype=f'multipart/{sub}; boundary="BND"', cte="7bit")


# --- new_text: the part of a reply above the quoted history ---------------------------------

def new_text_of(text: str) -> str:
    return parse_message(mail(text.encode("utf-8"))).new_text


def test_reply_zaixiedao_quote_is_cut():
    text = ("补充材料已寄出。\n\n在 2026年11月20日 10:35，南通市委政法委 <jiandu@zfw.example> 写道：\n"
            "> 您的来信已收到。\n")
    assert new_text_of(text) == "补充材料已寄出。"


def test_reply_gmail_chinese_attribution_is_cut():
    text = "好的，谢谢。\n\n南通市委政法委 <jiandu@zfw.example> 于2026年11月20日周五 10:35写道：\n\n> 已受理\n"
    assert new_text_of(text) == "好的，谢谢。"


def test_reply_outlook_original_block_is_cut():
    text = ("请问进展如何？\n\n-----原始邮件-----\n发件人: 政法委 <jiandu@zfw.example>\n"
            "发送时间: 2026年11月21日 9:02\n主题: 答复\n\n您好：已转办。")
    assert new_text_of(text) == "请问进展如何？"


def test_reply_english_wrote_wrapped_over_two_lines_is_cut():
    text = ("Thanks, the photos are attached.\n\nOn Fri, Nov 20, 2026 at 10:35 AM Zhengfawei\n"
            "<jiandu@zfw.example> wrote:\n> Received.\n")
    assert new_text_of(text) == "Thanks, the photos are attached."


def test_reply_outlook_english_header_block_with_rule_is_cut():
    text = ("I still have no answer.\n\n________________________________\nFrom: Zhengfawei "
            "<jiandu@zfw.example>\nSent: Friday, November 20, 2026 10:35\nTo: me\n"
            "Subject: Received\n\nYour letter was received.")
    assert new_text_of(text) == "I still have no answer."


def test_reply_foxmail_qq_block_is_cut():
    text = ("已补充身份证复印件。\n\n------------------ 原始邮件 ------------------\n"
            "发件人: \"政法委\"<jiandu@zfw.example>;\n发送时间: 2026年11月20日(星期五) 上午10:35\n"
            "收件人: \"我\"<me@qq.com>;\n主题: 已受理\n\n来信已收到。")
    assert new_text_of(text) == "已补充身份证复印件。"


def test_interleaved_angle_quotes_are_removed_from_new_text():
    text = "> 请问您的案号？\n案号是（2025）苏06执123号。\n> 何时立案？\n去年三月。"
    assert new_text_of(text) == "案号是（2025）苏06执123号。\n去年三月。"


def test_citizen_quoting_a_letter_is_not_a_reply_quote():
    text = "派出所在回复中写道：\n“此事不属于我所管辖。”\n我认为这是推诿。"
    assert new_text_of(text) == text


def test_single_from_line_in_citizen_text_is_not_a_header_block():
    text = "From: 一名老党员\n我想反映社区民警不作为的问题。"
    assert new_text_of(text) == text


def test_forward_without_own_words_keeps_whole_text_as_new():
    text = "-----原始邮件-----\n发件人: 张三 <z@example.com>\n发送时间: 今天\n主题: 举报\n\n赌场在三楼。"
    assert new_text_of(text) == text


# --- charsets and encoded-words of rarer clients --------------------------------------------

def test_iso_2022_jp_body_is_decoded():
    body = "警察の対応について".encode("iso-2022-jp")
    p = parse_message(mail(body, ctype="text/plain; charset=ISO-2022-JP", cte="7bit"))
    assert p.text == "警察の対応について"


def test_euc_kr_body_is_decoded():
    p = parse_message(mail("경찰 신고".encode("euc-kr"), ctype="text/plain; charset=euc-kr"))
    assert p.text == "경찰 신고"


def test_utf16_base64_body_is_decoded():
    body = base64.encodebytes("法院执行款未发放".encode("utf-16"))
    p = parse_message(mail(body, ctype="text/plain; charset=utf-16", cte="base64"))
    assert p.text == "法院执行款未发放"


def test_gbk_aliases_and_quoted_uppercase_labels_decode_gbk_only_characters():
    for label in ("x-gbk", "cp936", "gb_2312-80", '"GB2312"', "GB2312", "windows-936"):
        p = parse_message(mail("民警周镕收受好处".encode("gbk"), ctype=f"text/plain; charset={label}"))
        assert p.text == "民警周镕收受好处", label


def test_big5_label_decodes_hkscs_characters():
    p = parse_message(mail("香港居民𨋢".encode("big5hkscs"), ctype="text/plain; charset=big5"))
    assert p.text == "香港居民𨋢"


def test_encoded_word_split_in_the_middle_of_a_character():
    raw = "关于执行案款".encode()
    first, second = base64.b64encode(raw[:4]).decode(), base64.b64encode(raw[4:]).decode()
    p = parse_message(mail(b"x", subject=f"=?UTF-8?B?{first}?=\r\n =?utf-8?B?{second}?="))
    assert p.subject == "关于执行案款"


def test_raw_gbk_subject_and_name_without_encoded_words():
    head = "From: 王建国 <W@Example.com>\r\nSubject: 户籍窗口排队\r\n\r\n正文".encode("gbk")
    p = parse_message(head)
    assert (p.subject, p.from_name, p.from_addr) == ("户籍窗口排队", "王建国", "w@example.com")


def test_html_with_script_and_style_gives_only_visible_text():
    html = (b"<html><head><script>alert('x');var secret=1;</script><style>p{color:red}</style>"
            b"</head><body><p>\xe8\xb7\xaf\xe7\x81\xaf\xe5\x9d\x8f\xe4\xba\x86</p></body></html>")
    p = parse_message(mail(html, ctype="text/html; charset=utf-8"))
    assert p.text == "路灯坏了"


def test_html_without_charset_parameter_uses_meta_charset():
    html = '<meta charset="gbk"><p>噪音扰民</p>'.encode("gbk")
    p = parse_message(mail(html, ctype="text/html"))
    assert p.text == "噪音扰民"


def test_date_without_zone_is_aware_beijing_time():
    raw = mail(b"x").replace(b"Tue, 01 Dec 2026 10:00:00 +0800", b"Tue, 01 Dec 2026 10:00:00")
    p = parse_message(raw)
    assert p.date is not None and p.date.utcoffset().total_seconds() == 8 * 3600
    assert to_json(p, None)["date"] == "2026-12-01T10:00:00+08:00"


# --- attachments ------------------------------------------------------------------------------

def attachment_part(disposition: str, data: bytes = b"%PDF-1.4", ctype: str = "application/pdf"):
    return (f"Content-Type: {ctype}\r\nContent-Disposition: attachment; {disposition}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + base64.encodebytes(data)


TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xe6\xad\xa3\xe6\x96\x87"


def names(raw: bytes) -> list[str]:
    return [a.filename for a in parse_message(raw).attachments]


def test_attachment_names_are_sanitised():
    cases = {
        'filename="../../etc/passwd"': "passwd",
        'filename="C:\\\\Users\\\\me\\\\report.pdf"': "report.pdf",
        'filename="CON.pdf"': "_CON.pdf",
        'filename="a\x01b..pdf"': "a b.pdf",
        'filename="  .hidden  "': "hidden",
        'filename=""': "attachment-1.pdf",
    }
    for disposition, expected in cases.items():
        assert names(multipart(TEXT_PART, attachment_part(disposition))) == [expected], disposition


def test_long_attachment_name_is_cut_keeping_the_extension():
    [name] = names(multipart(TEXT_PART, attachment_part(f'filename="{"证" * 300}.pdf"')))
    assert len(name) <= 200 and name.endswith(".pdf") and name.startswith("证证")


def test_raw_gbk_and_rfc2231_gbk_names_are_decoded():
    raw_name = attachment_part('filename="').replace(b'filename="', 'filename="照片.jpg"'.encode("gbk"))
    rfc2231 = attachment_part("filename*=gbk''%D5%D5%C6%AC2.jpg")
    assert sorted(names(multipart(TEXT_PART, raw_name, rfc2231))) == ["照片.jpg", "照片2.jpg"]


def test_text_plain_with_filename_is_an_attachment_not_body():
    notes = attachment_part('filename="笔录.txt"', "笔录内容".encode(), "text/plain; charset=utf-8")
    p = parse_message(multipart(TEXT_PART, notes))
    assert p.text == "正文"
    assert [(a.filename, a.data.decode()) for a in p.attachments] == [("笔录.txt", "笔录内容")]


def test_winmail_dat_is_listed_as_attachment():
    tnef = attachment_part('filename="winmail.dat"', b"\x78\x9f\x3e\x22", "application/ms-tnef")
    p = parse_message(multipart(TEXT_PART, tnef))
    assert [(a.filename, a.content_type) for a in p.attachments] == [("winmail.dat",
                                                                       "application/ms-tnef")]


def test_uuencoded_block_in_text_becomes_an_attachment():
    import binascii

    line = binascii.b2a_uu(b"evidence bytes").decode()
    body = f"见附件。\nbegin 644 证据.txt\n{line}`\nend\n谢谢。".encode()
    p = parse_message(mail(body))
    assert p.text == "见附件。\n谢谢。"
    assert [(a.filename, a.data) for a in p.attachments] == [("证据.txt", b"evidence bytes")]


def test_oversized_mail_keeps_text_and_lists_no_attachment_data():
    raw = multipart(TEXT_PART, attachment_part('filename="big.pdf"', b"x" * 5000))
    p = parse_message(raw, max_bytes=1000)
    assert p.oversized and p.attachments == [] and p.text == "正文"
    assert any("big.pdf" in d for d in p.defects)
    assert not parse_message(raw).oversized


def test_inline_cid_image_is_marked_inline():
    html = b'Content-Type: text/html; charset=utf-8\r\n\r\n<p>\xe8\xa7\x81\xe5\x9b\xbe</p><img src="cid:img1@x">'
    img = (b"Content-Type: image/png\r\nContent-ID: <img1@x>\r\nContent-Transfer-Encoding: base64"
           b"\r\n\r\niVBORw0KGgo=")
    p = parse_message(multipart(html, img, sub="related"))
    assert p.text == "见图"
    assert [(a.inline, a.content_id) for a in p.attachments] == [(True, "img1@x")]


# --- hostile input ----------------------------------------------------------------------------

def test_garbage_never_raises_and_gives_clean_strings():
    for raw in (b"", b"\xff\xfe" * 500, b"\x00" * 100, b"Subject: =?utf-8?B?@@@?=\r\n\r\n",
                b"Content-Type: multipart/mixed\r\n\r\n--x\r\n", b"From: <<<@@>>>\r\n\r\nhi",
                b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n\xd6\xd0\xce\xc4"):
        p = parse_message(raw)
        assert isinstance(p.text, str) and "\x00" not in p.text
        assert to_json(p, None)["subject"] == p.subject


def test_deep_nesting_is_bounded():
    raw = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, 200):
        raw += f"--b{i - 1}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n".encode()
    start = time.perf_counter()
    p = parse_message(raw)
    assert time.perf_counter() - start < 5 and isinstance(p.text, str)


def test_long_line_is_fast_and_complete():
    line = ("我反映的问题如下：" + "某派出所不作为。" * 25000 + "落款：陈建华。").encode()
    start = time.perf_counter()
    p = parse_message(mail(line))
    assert time.perf_counter() - start < 2
    assert p.text.endswith("落款：陈建华。") and len(p.text) > 200000


def test_latin1_label_over_gbk_bytes_is_read_as_chinese_but_latin_text_is_kept():
    chinese = parse_message(mail("南通市中级人民法院执行局".encode("gbk"),
                                 ctype="text/plain; charset=iso-8859-1"))
    latin = parse_message(mail("Café résumé naïve, très bien".encode("latin-1"),
                               ctype="text/plain; charset=iso-8859-1"))
    assert (chinese.text, latin.text) == ("南通市中级人民法院执行局", "Café résumé naïve, très bien")


def test_undeclared_big5_body_is_not_read_as_japanese():
    p = parse_message(mail("臺灣居民保障當事人權利".encode("big5"), ctype="text/plain"))
    assert p.text == "臺灣居民保障當事人權利"


def test_stale_gb2312_label_over_utf8_bytes():
    p = parse_message(mail("派出所户籍窗口".encode(), ctype="text/plain; charset=gb2312"))
    assert p.text == "派出所户籍窗口"
