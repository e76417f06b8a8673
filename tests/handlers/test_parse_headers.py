"""Headers of real-world mail (issue #16, classes 3, 4 and 7): the sender is found when From holds
several mailboxes or a broken first one, a malformed header block is recovered instead of read as
body, and raw 8-bit bytes inside encoded-words are decoded by the word's charset."""

from __future__ import annotations

from handlers.parse import parse_message

BODY = "\r\n\r\n请尽快处理。".encode()
REST = b"To: ntzfwjgdw@163.com\r\nSubject: t\r\nDate: Tue, 01 Dec 2026 10:00:00 +0800"


# --- class 3: the sender when From is odd ------------------------------------------------------

def sender_of(from_lines: bytes) -> tuple[str | None, str | None, list[str]]:
    p = parse_message(from_lines + b"\r\n" + REST + BODY)
    return p.from_addr, p.from_name, p.defects


def test_first_mailbox_without_address_falls_to_the_next_with_a_defect():
    addr, name, defects = sender_of(b'From: "Yangzhou ABC " <>, "LTD" <LY@example.com>')
    assert (addr, name) == ("ly@example.com", "LTD")
    assert any("第一个可用地址" in d for d in defects)
    assert not any("ly@example.com" in d for d in defects)  # no personal data in defects


def test_two_from_headers_the_first_unusable():
    addr, name, defects = sender_of("From: 匿名\r\nFrom: 张三 <zhangsan@qq.com>".encode())
    assert (addr, name) == ("zhangsan@qq.com", "张三")
    assert any("第一个可用地址" in d for d in defects)


def test_several_authors_take_the_first_and_say_so():
    addr, _name, defects = sender_of(b"From: a@163.com, b@qq.com")
    assert addr == "a@163.com" and defects


def test_comma_inside_an_encoded_word_display_name():
    for raw, name in ((b"From: =?iso-8859-1?Q?B=FCrling,=20Andreas?= <smith@example.com>",
                       "Bürling, Andreas"),
                      (b'From: "=?utf-8?B?546L5bu65Zu9LOWNl+mAmg==?=" <w@163.com>', "王建国,南通")):
        addr, got, defects = sender_of(raw)
        assert (addr, got) == (raw.rsplit(b"<", 1)[1].rstrip(b">").decode(), name)
        assert defects == []


def test_to_and_cc_with_encoded_commas_list_every_address():
    raw = (b"From: a@163.com\r\nTo: =?utf-8?Q?Li,_Si?= <li@qq.com>, wang@163.com\r\n"
           b"Cc: =?gbk?B?1cXI/Q==?= <zs@126.com>" + BODY)
    assert parse_message(raw).to_addrs == ["li@qq.com", "wang@163.com", "zs@126.com"]


# --- class 7: raw 8-bit bytes inside encoded-words --------------------------------------------

def test_raw_utf8_bytes_inside_q_words_of_subject_and_name():
    raw = ("From: =?utf-8?Q?王建国?= <w@163.com>\r\nSubject: =?utf-8?Q?关于噪音_test?=\r\n"
           "To: ntzfwjgdw@163.com").encode() + BODY
    p = parse_message(raw)
    assert (p.subject, p.from_name) == ("关于噪音 test", "王建国")


def test_raw_gbk_bytes_inside_a_gb2312_q_word():
    raw = "From: a@163.com\r\nSubject: =?gb2312?Q?举报材料_补充?=".encode("gbk") + BODY
    assert parse_message(raw).subject == "举报材料 补充"


def test_raw_bytes_inside_a_b_word_are_taken_as_written():
    raw = "From: a@163.com\r\nSubject: =?utf-8?B?关于拆迁?=".encode() + BODY
    assert parse_message(raw).subject == "关于拆迁"


def test_raw_bytes_inside_an_encoded_word_filename():
    part = ('--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n见附件\r\n--B\r\n'
            'Content-Type: application/pdf; name="=?utf-8?Q?投诉.pdf?="\r\n'
            'Content-Disposition: attachment; filename="=?utf-8?Q?投诉.pdf?="\r\n'
            'Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n').encode()
    raw = b'From: a@163.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n' + part
    p = parse_message(raw)
    assert [a.filename for a in p.attachments] == ["投诉.pdf"]
    assert p.text == "见附件"


# --- class 4: a malformed header block -------------------------------------------------------

HEAD = ("From: 张三 <zhangsan@163.com>\r\nTo: ntzfwjgdw@163.com\r\nSubject: =?utf-8?B?"
        "5YWz5LqO5ouG6L+B?=\r\nDate: Tue, 01 Dec 2026 10:00:00 +0800\r\n").encode()


def test_a_line_pasted_above_the_headers_is_skipped_and_the_headers_recovered():
    for junk in (b"---- Original email message ----\r\n", b"> \r\n-------- Forwarded --------\r\n"):
        p = parse_message(junk + HEAD + "\r\n补偿款至今未发放。".encode())
        assert (p.from_addr, p.subject, p.text) == ("zhangsan@163.com", "关于拆迁", "补偿款至今未发放。")
        assert p.date is not None and any("邮件头" in d for d in p.defects)


def test_unindented_continuation_lines_are_joined_to_their_header():
    raw = (b"From: a@163.com\r\nTo: x@qq.com,\r\ny@qq.com,\r\nz@qq.com\r\n"
           b"Subject: a very long subject that a broken mailer\r\nwrapped without indent\r\n"
           b"Date: Tue, 01 Dec 2026 10:00:00 +0800\r\n\r\nbody text")
    p = parse_message(raw)
    assert p.subject == "a very long subject that a broken mailer wrapped without indent"
    assert p.to_addrs == ["x@qq.com", "y@qq.com", "z@qq.com"]
    assert (p.text, p.date is not None) == ("body text", True)
    assert any("续行" in d for d in p.defects)


def test_body_without_blank_line_after_headers_is_still_body():
    p = parse_message(b"From: a@163.com\r\nSubject: s\r\nthis is the body\r\nsecond line")
    assert (p.subject, p.text) == ("s", "this is the body\nsecond line")


def test_letter_without_any_headers_stays_all_body():
    text = "尊敬的领导：\r\n我反映一个问题。\r\n\r\n此致"
    p = parse_message(text.encode())
    assert p.text == "尊敬的领导：\n我反映一个问题。\n\n此致" and p.from_addr is None


def test_address_written_without_angle_brackets_after_a_name():
    for raw, want in ((b'From: "Smith, John" john@example.com', ("john@example.com", "Smith, John")),
                      (b"From: =?utf-8?B?546L5bu65Zu9?= W@163.com", ("w@163.com", "王建国"))):
        assert sender_of(raw)[:2] == want


def test_space_before_the_colon_of_a_header_name_is_repaired():
    p = parse_message(b"From: a@163.com\r\nSubject : \xe8\xb7\xaf\xe7\x81\xaf\r\n"
                      b"Date: Tue, 01 Dec 2026 10:00:00 +0800\r\n\r\nbody")
    assert (p.subject, p.text, p.date is not None) == ("路灯", "body", True)
