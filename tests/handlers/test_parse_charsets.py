"""Charset decisions on mail nobody here has seen (issue #16, classes 2, 6 and 8): a declared Latin
charset is kept unless a more plausible reading shows it is wrong, real Chinese mislabelled as
Latin-1 is still rescued, and the rarer 7-bit and Japanese encodings read as written."""

from __future__ import annotations

import base64

from handlers.parse import parse_message
from tests.handlers.test_parse import TEXT_PART, attachment_part, mail


def latin1_mail(body: bytes, headers: bytes = b"Subject: x\r\n") -> bytes:
    return (b"From: Hans <hans@example.de>\r\nTo: ntzfwjgdw@163.com\r\n" + headers
            + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)


# --- class 2: a declared Latin charset against a GB or Big5 guess ----------------------------

def test_declared_latin1_umlauts_are_not_read_as_rare_hanzi():
    for body in (b"aa\xe4\xf6\xfc\xdfad asd", b"B\xc4KO", b"Schlie\xdfe die T\xfcr, B\xc4KO.",
                 b"Gr\xfc\xdfe aus M\xfcnchen"):
        p = parse_message(latin1_mail(body))
        assert (p.text, p.defects) == (body.decode("latin-1"), []), body


def test_latin_subject_name_and_filename_keep_their_umlauts():
    head = (b"From: =?iso-8859-1?Q?J=FCrgen_B=C4KO?= <jb@example.de>\r\nTo: ntzfwjgdw@163.com\r\n"
            b"Subject: =?iso-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="BND"\r\n\r\n')
    photo = attachment_part('filename="Hofj\xe4geralle.jpg"', b"\xff\xd8\xff", "image/jpeg")
    raw = head + b"--BND\r\n" + TEXT_PART + b"\r\n--BND\r\n" + photo.replace(
        "Hofj\xe4geralle".encode(), b"Hofj\xe4geralle") + b"\r\n--BND--\r\n"
    p = parse_message(raw)
    assert (p.subject, p.from_name) == ("Grüße aus München", "Jürgen BÄKO")
    assert [a.filename for a in p.attachments] == ["Hofjägeralle.jpg"]


def test_raw_8bit_latin_subject_without_any_label_reads_as_latin_and_says_it_guessed():
    p = parse_message(latin1_mail(b"ok", b"Subject: Gr\xfc\xdfe aus K\xf6ln\r\n"))
    assert p.subject == "Grüße aus Köln"
    assert any("windows-1252" in d for d in p.defects)


def test_chinese_mislabelled_as_latin1_is_still_rescued_and_flagged():
    for text, codec in (("南通市中级人民法院执行局拖延执行", "gbk"), ("举报", "gbk"),
                        ("臺灣居民保障當事人權利", "big5")):
        p = parse_message(latin1_mail(text.encode(codec)))
        assert p.text == text, codec
        assert any("iso-8859-1" in d for d in p.defects)
    subject = base64.b64encode("关于拆迁补偿".encode("gbk")).decode()
    p = parse_message(latin1_mail(b"x", f"Subject: =?iso-8859-1?B?{subject}?=\r\n".encode()))
    assert p.subject == "关于拆迁补偿"


def test_raw_gbk_names_with_rare_characters_stay_chinese():
    head = "From: 周喆 <z@163.com>\r\nSubject: 民警周镕\r\n\r\n正文".encode("gbk")
    p = parse_message(head)
    assert (p.from_name, p.subject) == ("周喆", "民警周镕")


# --- class 6: uncommon but real encodings ----------------------------------------------------

def test_utf7_body_and_subject_are_decoded():
    body = "派出所不作为，请核查。".encode("utf-7")
    subject = "=?utf-7?Q?" + "投诉".encode("utf-7").decode().replace("+", "+") + "?="
    p = parse_message(mail(body, ctype="text/plain; charset=utf-7", cte="7bit", subject=subject))
    assert (p.subject, p.text) == ("投诉", "派出所不作为，请核查。")


def test_hz_gb_2312_labelled_and_unlabelled():
    body = "小区噪音扰民，已经持续三个月。".encode("hz")
    labelled = parse_message(mail(body, ctype="text/plain; charset=HZ-GB-2312", cte="7bit"))
    unlabelled = parse_message(mail(body + b"\r\nThanks", ctype="text/plain", cte="7bit"))
    assert labelled.text == "小区噪音扰民，已经持续三个月。"
    assert unlabelled.text == "小区噪音扰民，已经持续三个月。\nThanks"
    assert any("HZ" in d for d in unlabelled.defects)


def test_ascii_tilde_brace_text_is_not_mistaken_for_hz():
    p = parse_message(mail(b"if (x) ~{ y ~} done", ctype="text/plain", cte="7bit"))
    assert p.text == "if (x) ~{ y ~} done"


def test_iso_2022_jp_with_nec_circled_digits():
    # ESC $ B, then NEC row 13 (1-13-1 = ①, 1-13-2 = ②) and ordinary kana, then ESC ( B.
    body = b"\x1b$B-!-\"" + "の至り".encode("iso-2022-jp")[3:] + b" OK"
    p = parse_message(mail(body, ctype="text/plain; charset=iso-2022-jp", cte="7bit"))
    assert p.text == "①②の至り OK"


def test_shift_jis_bytes_under_an_iso_2022_jp_label():
    body = "①会議は明日です。".encode("cp932")
    p = parse_message(mail(body, ctype="text/plain; charset=ISO-2022-JP", cte="8bit"))
    assert p.text == "①会議は明日です。"
    assert any("shift_jis" in d for d in p.defects)


def test_unknown_label_over_utf8_prefers_utf8_even_with_a_damaged_byte():
    good = "关于小区物业乱收费问题的投诉，请尽快处理。".encode()
    clean = parse_message(mail(good, ctype="text/plain; charset=iso-gb2312"))
    damaged = parse_message(mail(good[:21] + b"\xff" + good[21:], ctype="text/plain; charset=iso-gb2312"))
    assert clean.text == "关于小区物业乱收费问题的投诉，请尽快处理。"
    assert damaged.text.startswith("关于小区物业乱") and damaged.text.endswith("的投诉，请尽快处理。")
    assert "\ufffd" in damaged.text and damaged.defects


# --- class 8: a declared charset with a few invalid bytes -------------------------------------

def test_short_part_with_a_few_invalid_bytes_keeps_its_declared_charset():
    for label, text in (("utf-8", "请回电"), ("gb2312", "请回电"), ("iso-8859-1", "Bitte")):
        codec = {"gb2312": "gbk"}.get(label, label)
        body = text.encode(codec) + b"\x80\xff" + " 13800000000".encode(codec)
        p = parse_message(mail(body, ctype=f"text/plain; charset={label}"))
        assert p.text.startswith(text) and p.text.endswith(" 13800000000"), (label, p.text)
        assert len(p.text) <= len(text) + 16, (label, p.text)
