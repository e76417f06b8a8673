"""MIME structure and transfer-encoding edge cases of real-world mail (issue #16, classes 6 and 8):
unseparated Content-Type parameters, junk after base64 padding, message/external-body, text in
application/octet-stream, a letter whose only text is an attached .html file, format=flowed."""

from __future__ import annotations

import base64

from handlers.parse import parse_message

HEAD = (b"From: a@163.com\r\nTo: ntzfwjgdw@163.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n")


def b64(text: str, charset: str = "utf-8") -> bytes:
    return base64.encodebytes(text.encode(charset))


def parts(*bodies: bytes, ctype: bytes = b'multipart/mixed; boundary="XX"') -> bytes:
    return (HEAD + b"Content-Type: " + ctype + b"\r\n\r\n"
            + b"".join(b"--XX\r\n" + body + b"\r\n" for body in bodies) + b"--XX--\r\n")


TEXT = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
PDF = (b'Content-Type: application/pdf; name="a.pdf"\r\nContent-Disposition: attachment; '
       b'filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=')


def test_boundary_parameter_without_semicolon_recovers_the_tree():
    for sep in (b"\r\n ", b"\r\n\t", b" "):
        raw = parts(TEXT + b64("请核查附件。"), PDF, ctype=b'multipart/mixed' + sep + b'boundary="XX"')
        p = parse_message(raw)
        assert p.text == "请核查附件。", sep
        assert [a.filename for a in p.attachments] == ["a.pdf"]
        assert any("分号" in d for d in p.defects)


def test_base64_stops_at_padding_when_junk_follows():
    body = TEXT + b64("派出所门口") + b"\r\n-- \r\nSent from my gateway, scanned for viruses\r\n"
    p = parse_message(parts(body))
    assert p.text == "派出所门口"
    assert any("base64" in d for d in p.defects)
    assert not any("scanned" in d for d in p.defects)  # a size, never the letter's text


def test_base64_chunks_concatenated_with_padding_inside_still_decode():
    body = TEXT + base64.b64encode("第一段".encode()) + b"\r\n" + base64.b64encode("第二段".encode())
    assert parse_message(parts(body)).text == "第一段第二段"


def test_external_body_is_neither_forwarded_mail_nor_an_attachment():
    ext = (b'Content-Type: message/external-body; access-type=URL;\r\n URL="http://x.example/a.doc"'
           b'\r\n\r\nContent-Type: application/msword\r\nContent-ID: <e1@x>\r\n\r\n')
    p = parse_message(parts(TEXT + b64("材料见链接。"), ext))
    assert p.text == "材料见链接。" and p.attachments == []
    assert any("external-body" in d or "外部正文" in d for d in p.defects)


def test_unnamed_octet_stream_text_part_is_read_as_the_body():
    part = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + b64("小区电梯故障一个月无人维修。", "gbk"))
    p = parse_message(parts(part))
    assert p.text == "小区电梯故障一个月无人维修。" and p.attachments == []
    assert any("octet-stream" in d for d in p.defects)


def test_octet_stream_binary_and_named_files_stay_attachments():
    blob = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(b"%PDF-1.4\n1 0 obj"))
    named = (b'Content-Type: application/octet-stream; name="notes.txt"\r\n'
             b"Content-Transfer-Encoding: base64\r\n\r\n" + b64("笔记"))
    p = parse_message(parts(TEXT + b64("正文"), blob, named))
    assert p.text == "正文" and len(p.attachments) == 2


def test_letter_whose_only_text_is_an_attached_html_file():
    html = (b'Content-Type: text/html; charset=gbk; name="letter.html"\r\nContent-Disposition: '
            b'attachment; filename="letter.html"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + b64("<html><body><p>举报<span>某某</span>违规经商。</p></body></html>", "gbk"))
    p = parse_message(parts(html))
    assert p.text == "举报某某违规经商。"
    assert [a.filename for a in p.attachments] == ["letter.html"]
    assert any("HTML 文件" in d for d in p.defects)


def test_attached_html_does_not_replace_a_body():
    html = (b'Content-Type: text/html; name="a.html"\r\nContent-Disposition: attachment; '
            b'filename="a.html"\r\n\r\n<p>\xe9\x99\x84\xe4\xbb\xb6</p>')
    assert parse_message(parts(TEXT + b64("正文"), html)).text == "正文"


def test_format_flowed_delsp_joins_a_chinese_sentence_without_a_space():
    body = ("我家楼下的烧烤店每天营业到凌晨 \r\n两点，噪音很大，多次 \r\n向社区反映没有结果。\r\n"
            "\r\n王先生\r\n").encode()
    raw = (HEAD + b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)
    assert parse_message(raw).text == "我家楼下的烧烤店每天营业到凌晨两点，噪音很大，多次向社区反映没有结果。\n\n王先生"


def test_format_flowed_without_delsp_keeps_the_space_between_words():
    raw = (HEAD + b"Content-Type: text/plain; charset=us-ascii; format=flowed\r\n\r\n"
           b"The street light has been \r\nbroken for a month.\r\n>> quoted \r\n>> text\r\n")
    assert parse_message(raw).text == "The street light has been broken for a month.\n>> quoted text"


def test_text_enriched_body_is_read_without_its_formatting_commands():
    raw = (HEAD + b"Content-Type: text/enriched; charset=utf-8\r\n\r\n"
           + "<bold>紧急</bold>：桥下<italic>积水</italic>\r\n很深\r\n\r\n<<注意安全>".encode())
    assert parse_message(raw).text == "紧急：桥下积水 很深\n<注意安全>"


def test_quoted_printable_soft_break_with_trailing_whitespace():
    raw = (HEAD + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
           b"quoted-printable\r\n\r\n=E6=B4=BE=E5=87=BA=E6=89=80= \r\n=E4=B8=8D=E4=BD=9C=E4=B8=BA=\t\r\n"
           b"=E3=80=82 \r\n")
    assert parse_message(raw).text == "派出所不作为。"
