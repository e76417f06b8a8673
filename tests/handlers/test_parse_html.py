"""HTML bodies as Chinese clients write them (issue #16, classes 1, 5 and the HTML items of 6):
inline elements add no spaces, deep nesting never loses text silently, Outlook "Word" HTML and
entities read as the writer wrote them."""

from __future__ import annotations

from handlers.parse import parse_message
from tests.handlers.test_parse import mail, multipart


def html_mail(markup: str, charset: str = "utf-8") -> bytes:
    return mail(markup.encode(charset), ctype=f"text/html; charset={charset}")


def test_adjacent_inline_elements_add_no_space_inside_chinese_words():
    p = parse_message(html_mail("<p>投资<span>移民</span>简讯</p><p>ab<span>cd</span>ef</p>"))
    assert p.text == "投资移民简讯\n\nabcdef"


def test_foxmail_and_qq_span_soup_reads_as_one_sentence():
    # Foxmail/QQ wrap runs of a sentence in styled spans and fonts at every edit.
    markup = ('<div style="font-family:微软雅黑"><span style="font-size:14px">我是</span><font '
              'color="#ff0000"><b>崇川区</b></font><span>居民，</span><a href="http://x.example">'
              '<u>某某小区</u></a><em>物业</em><strong>乱收费</strong><small>问题</small><sup>'
              '1</sup><i>已持续</i><label>半年</label>。</div><div><br></div><div>'
              '<span>联系人：</span><span>陈</span><span>女士</span></div>')
    p = parse_message(html_mail(markup, "gbk"))
    assert p.text == "我是崇川区居民，某某小区物业乱收费问题1已持续半年。\n\n联系人：陈女士"


def test_alternative_with_only_html_rendering_keeps_words_whole():
    html = ('Content-Type: text/html; charset=utf-8\r\n\r\n<div><span>执行</span><span>款</span>'
            '<span>至今未到账</span></div>').encode()
    p = parse_message(multipart(html, sub="alternative"))
    assert p.text == "执行款至今未到账"


def test_block_elements_still_break_lines_and_tables_stay_readable():
    markup = ("<div>第一段</div><div>第二段</div><p>第三段<br>换行</p><table><tr><td>姓名</td>"
              "<td>张三</td></tr></table>")
    lines = parse_message(html_mail(markup)).text.split("\n")
    assert [x.strip() for x in lines if x.strip()] == ["第一段", "第二段", "第三段", "换行",
                                                       "姓名  张三"]


def test_outlook_word_html_gives_the_text_without_styles_or_conditional_comments():
    markup = ("<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head><meta "
              "name=Generator content=\"Microsoft Word 15\"><style><!-- p.MsoNormal{margin:0cm;"
              "font-size:10.5pt;font-family:等线} @page WordSection1{size:612.0pt 792.0pt;} -->"
              "</style><!--[if gte mso 9]><xml><o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" />"
              "</xml><![endif]--></head><body lang=ZH-CN><div class=WordSection1><p "
              "class=MsoNormal><span lang=ZH-CN style='font-family:等线'>领导：<o:p></o:p></span>"
              "</p><p class=MsoNormal><span lang=ZH-CN>我单位</span><span lang=EN-US>2026</span>"
              "<span lang=ZH-CN>年</span><span lang=EN-US>3</span><span lang=ZH-CN>月反映的问题"
              "</span><span lang=ZH-CN style='color:red'>仍未解决</span>。<o:p>&nbsp;</o:p></p>"
              "<p class=MsoNormal><o:p>&nbsp;&nbsp;&nbsp;</o:p></p><p class=MsoNormal><span>"
              "此致&nbsp;&nbsp;敬礼</span></p></div></body></html>")
    p = parse_message(html_mail(markup))
    assert p.text.split("\n\n") == ["领导：", "我单位2026年3月反映的问题仍未解决。", "此致 敬礼"]
    for junk in ("MsoNormal", "mso", "WordSection", "shapedefaults", "&nbsp;", "{"):
        assert junk not in p.text


def test_named_and_numeric_entities_are_resolved():
    p = parse_message(html_mail("<p>他说&ldquo;不归我管&rdquo;&hellip;&#x4E2D;&#25991;&amp;&lt;"
                                "&mdash;</p>"))
    assert p.text == "他说“不归我管”…中文&<—"


def deep(levels: int) -> str:
    return ("<div>开头的文字</div>" + "<div>" * levels + "<span>深处的文字</span>"
            + "</div>" * levels + "<p>结尾的文字</p>")


def test_html_nested_past_libxml2s_limit_keeps_all_its_text_and_says_so():
    for levels in (300, 1500, 5000):
        p = parse_message(html_mail(deep(levels)))
        words = [w for w in p.text.split() if w]
        assert words == ["开头的文字", "深处的文字", "结尾的文字"], levels
        assert any("HTML" in d and "嵌套" in d or "版式" in d for d in p.defects), levels


def test_ordinary_html_records_no_defect():
    p = parse_message(html_mail("<div>" * 40 + "<p>路灯坏了</p>" + "</div>" * 40))
    assert (p.text, p.defects) == ("路灯坏了", [])
