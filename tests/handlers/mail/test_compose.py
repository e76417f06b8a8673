"""Outgoing mail as a citizen's mail program reads it back."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from handlers.mail import compose


def outgoing(**kw: object) -> compose.Outgoing:
    values: dict = dict(
        from_addr="feedback@zfw.example.gov.cn", from_name="市委政法委",
        to=[("张 三", "zhang@example.com")],
        subject="【已收到】您的来信已登记，编号 FK-ABCD-EFGH",
        text="您好：\n您的来信已收到。", html="<p>您好：</p><p>您的来信已收到。</p>",
        message_id="ack.FKABCDEFGH.0a1b2c3d.0123456789abcdef@zfw.example.gov.cn",
        in_reply_to="orig.1@example.com", references=["orig.0@example.com", "orig.1@example.com"])
    values.update(kw)
    return compose.Outgoing(**values)


def read(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def test_an_acknowledgement_reads_back_as_written():
    data = compose.build(outgoing())
    msg = read(data)
    assert msg["Subject"] == "【已收到】您的来信已登记，编号 FK-ABCD-EFGH"
    assert msg["From"].addresses[0].display_name == "市委政法委"
    assert msg["To"].addresses[0].addr_spec == "zhang@example.com"
    assert msg["Message-ID"] == "<ack.FKABCDEFGH.0a1b2c3d.0123456789abcdef@zfw.example.gov.cn>"
    assert msg["In-Reply-To"] == "<orig.1@example.com>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg[compose.LOOP_HEADER] == "feedback@zfw.example.gov.cn"
    assert msg.get_body(("plain",)).get_content() == "您好：\n您的来信已收到。"
    assert "您的来信已收到" in msg.get_body(("html",)).get_content()
    assert not msg.defects
    # SMTP line ends, lines within the limit, and the tracking number readable in the raw
    # subject (a staff member grepping .eml files, a mail log)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"FK-ABCD-EFGH" in data.split(b"\r\n\r\n", 1)[0]


def test_citizen_text_cannot_add_a_header():
    data = compose.build(outgoing(subject="问题\r\nBcc: everyone@example.com",
                                  to=[("x\r\nBcc: b@example.com", "zhang@example.com")]))
    msg = read(data)
    assert msg["Bcc"] is None
    assert "Bcc" in msg["Subject"]  # kept as text on the one line


def test_chart_inline_and_workbook_attached():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    sheet = b"PK\x03\x04" + bytes(300)
    data = compose.build(outgoing(
        html='<p>图表</p><img src="cid:chart.1@zfw">',
        inline=[compose.Inline(cid="chart.1@zfw", data=png)],
        attachments=[compose.Attached(filename="每周摘要 2026-W48.xlsx", data=sheet,
                                      subtype="vnd.openxmlformats-officedocument"
                                              ".spreadsheetml.sheet")]))
    msg = read(data)
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert parts["image/png"]["Content-ID"] == "<chart.1@zfw>"
    assert parts["image/png"].get_content() == png
    files = list(msg.iter_attachments())
    assert [f.get_filename() for f in files] == ["每周摘要 2026-W48.xlsx"]
    assert files[0].get_content() == sheet
    assert msg.get_body(("plain",)).get_content() == "您好：\n您的来信已收到。"


def test_an_internationalised_domain_is_written_in_idna():
    """An ASCII local part at a Chinese domain needs nothing of the relay: the domain is
    written as its IDNA A-label, which every relay takes."""
    data = compose.build(outgoing(to=[("张三", "zhang@例子.中国")]))
    msg = read(data)
    assert msg["To"].addresses[0].addr_spec == "zhang@xn--fsqu00a.xn--fiqs8s"
    assert msg["To"].addresses[0].display_name == "张三"
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    assert compose.envelope_address("zhang@例子.中国") == ("zhang@xn--fsqu00a.xn--fiqs8s", False)


def test_a_non_ascii_local_part_is_written_for_smtputf8():
    """用户@例子.广告 has no ASCII form: the header carries it as UTF-8 (RFC 6532), and the
    envelope says the relay must offer SMTPUTF8."""
    for addr in ("用户@例子.广告", "张三@例子.中国", "张三@example.com"):
        data = compose.build(outgoing(to=[("张三", addr)]))
        # A mail program of our time reads the UTF-8 header as text (RFC 6532)
        msg = email.message_from_string(data.decode("utf-8"), policy=policy.default)
        assert msg["To"].addresses[0].addr_spec == addr
        assert msg["To"].addresses[0].display_name == "张三"
        assert compose.envelope_address(addr) == (addr, True)
        assert msg.get_body(("plain",)).get_content() == "您好：\n您的来信已收到。"


def test_an_encoded_word_holding_crlf_stays_one_line_in_the_to_name():
    """A name whose encoded-word decodes to text with CR/LF (typed into the form, or written by
    a hostile mail program) is decoded, folded to one line and encoded again: a reader's
    program shows one name and no extra header or recipient."""
    import base64

    hostile = "=?utf-8?b?" + base64.b64encode("张三\r\nBcc: all@example.com".encode()).decode() + "?="
    for name in (hostile, "=?utf-8?q?x=0D=0ABcc=3A_b=40example=2Ecom?="):
        msg = read(compose.build(outgoing(to=[(name, "zhang@example.com")])))
        [to] = msg["To"].addresses
        assert "\r" not in to.display_name and "\n" not in to.display_name
        assert "Bcc" in to.display_name  # kept as text
        assert to.addr_spec == "zhang@example.com"
        assert msg["Bcc"] is None


def test_nothing_in_an_address_or_name_makes_compose_raise():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(codec=None), max_size=60)
    addr = st.one_of(text, st.builds(lambda a, b: f"{a}@{b}", text, text))

    @settings(max_examples=300, deadline=None)
    @given(name=text, address=addr, sender=addr)
    def check(name: str, address: str, sender: str) -> None:
        data = compose.build(outgoing(to=[(name, address)], from_addr=sender, from_name=name))
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        names = [line.split(b":", 1)[0].lower() for line in head if line[:1] not in b" \t"]
        assert names.count(b"to") == names.count(b"from") == 1 and b"bcc" not in names
        assert b"\n" not in data.replace(b"\r\n", b"")

    check()


def test_a_lone_surrogate_in_our_sender_address_does_not_break_the_loop_header():
    # Hypothesis found it: the loop header repeated the sender address as given, and an
    # undecodable byte kept by a parser (a lone surrogate) made building the mail raise.
    data = compose.build(outgoing(to=[("张三", "zhangsan@163.com")], from_addr="\ud800@x",
                                  from_name="市委政法委"))
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"X-Feedback-Bot-Loop: ?@x" in head and b"From: " + b"=?utf-8?" in b"\n".join(head)


def test_flatten_writes_what_the_stdlib_generator_writes():
    """``compose.flatten`` replaces ``as_bytes(policy=WIRE)`` for speed: on messages of every
    shape we build (with and without HTML, inline images and attachments; names, subjects and
    addresses of any text) the bytes are the same, including after the header cache has seen
    other messages' values."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(codec=None), max_size=80)
    cjk = st.text(st.sampled_from("张三李四市委政法委反映问题【】，。 abcFK-0123\r\n=?"), max_size=90)
    addr = st.one_of(st.builds(lambda a, b: f"{a}@{b}", text, text), st.just("li@163.com"))
    blob = st.binary(max_size=300)

    @settings(max_examples=300, deadline=None)
    @given(name=st.one_of(text, cjk), address=addr, subject=st.one_of(text, cjk),
           body=st.one_of(text, cjk), html=st.one_of(st.none(), cjk), sender=st.one_of(cjk, text),
           refs=st.lists(st.one_of(text, st.just("orig.1@example.com")), max_size=12),
           inline=st.lists(blob, max_size=2), files=st.lists(st.tuples(cjk, blob), max_size=2))
    def check(name: str, address: str, subject: str, body: str, html: str | None, sender: str,
              refs: list[str], inline: list[bytes], files: list[tuple[str, bytes]]) -> None:
        msg = compose.message(outgoing(
            to=[(name, address)], from_name=sender, subject=subject, text=body,
            html=html if html is not None or not inline else "<p>x</p>",
            references=refs, in_reply_to=refs[-1] if refs else None,
            inline=[compose.Inline(f"c{n}@zfw", data) for n, data in enumerate(inline)],
            attachments=[compose.Attached(fn or "x", data) for fn, data in files]))
        assert compose.flatten(msg) == msg.as_bytes(policy=compose.WIRE)

    check()


def test_two_citizens_acknowledged_in_turn_each_get_their_own_headers():
    """The folded headers are remembered by value (the sender's name is the same on every
    acknowledgement): each message carries its own recipient and subject, never the one of
    the message built before it. The names are long enough to be folded (a short header is
    written as it is)."""
    for n in range(3):
        for who in ("张三", "李四"):
            tn = f"FK-ABCD-{who.encode().hex()[:3].upper()}{n}"
            name = f"{who}{n} 江苏省南通市崇川区某某街道某某社区居民"
            msg = read(compose.build(outgoing(
                to=[(name, f"{who.encode().hex()}@163.com")],
                subject=f"【已收到】您的来信已登记，编号 {tn}")))
            assert msg["To"].addresses[0].display_name == name
            assert msg["To"].addresses[0].addr_spec == f"{who.encode().hex()}@163.com"
            assert msg["Subject"].endswith(tn)
            assert msg["From"].addresses[0].display_name == "市委政法委"
