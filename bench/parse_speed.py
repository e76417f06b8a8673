"""Parse time of one letter (printed, not asserted).

Usage: python bench/parse_speed.py [--quick]

Measures ``handlers.parse.parse_message`` on three letters shaped like the mailbox's traffic: a
short UTF-8 plain-text letter (what most citizens send; the README's figure, 0.16 ms), a
Foxmail-style multipart/alternative GBK letter with an HTML part full of spans, and an
Outlook-style HTML letter; as the baseline of the same run, the short letter through the bare
stdlib (``policy.default`` parse, ``get_body``, ``get_content``). Each is parsed many times in
one process after a warm-up; the median of several rounds is printed, per letter, in
milliseconds of CPU time (process time, so that other work on a shared machine does not count).
"""

from __future__ import annotations

import argparse
import base64
import email.policy
import statistics
import sys
import time
from collections.abc import Callable
from email.parser import BytesParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handlers.parse import parse_message  # noqa: E402

_HEAD = ("From: =?utf-8?B?{name}?= <citizen{i}@163.com>\r\nTo: ntzfwjgdw@163.com\r\n"
         "Subject: =?utf-8?B?{subject}?=\r\nDate: Tue, 01 Dec 2026 10:00:00 +0800\r\n"
         "Message-ID: <{i}.short@163.com>\r\nMIME-Version: 1.0\r\n")


def _b64(text: str, charset: str = "utf-8") -> str:
    return base64.b64encode(text.encode(charset)).decode()


def short_letter(i: int) -> bytes:
    body = "您好：我家楼下的烧烤店每天营业到凌晨两点，噪音很大，多次向社区反映没有结果。请帮忙协调。\r\n王先生"
    head = _HEAD.format(name=_b64("王建国"), subject=_b64("关于噪音扰民的反映"), i=i)
    return (head + "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + _b64(body) + "\r\n").encode()


def foxmail_letter(i: int) -> bytes:
    text = "您好：\r\n小区门口的路灯坏了一个月，晚上很不安全。\r\n"
    html = ("<html><body><div><span style=\"font-size:14px\">您好：</span></div><div>"
            "<span>小区门口的</span><span><b>路灯</b></span><span>坏了一个月，晚上很不安全。</span>"
            "</div><div><br></div><div><font color=\"#888\">李女士</font></div></body></html>")
    head = _HEAD.format(name=_b64("李女士"), subject=_b64("路灯"), i=i)
    return (head + 'Content-Type: multipart/alternative; boundary="----=_NextPart_1"\r\n\r\n'
            "------=_NextPart_1\r\nContent-Type: text/plain; charset=\"gb2312\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + _b64(text, "gbk") + "\r\n"
            "------=_NextPart_1\r\nContent-Type: text/html; charset=\"gb2312\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + _b64(html, "gbk") + "\r\n"
            "------=_NextPart_1--\r\n").encode()


def outlook_html_letter(i: int) -> bytes:
    html = ("<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head><style><!-- "
            "p.MsoNormal{margin:0cm;font-size:10.5pt} --></style><!--[if gte mso 9]><xml>"
            "<o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" /></xml><![endif]--></head><body>"
            "<div class=WordSection1><p class=MsoNormal><span lang=ZH-CN style='font-family:"
            "等线'>您好：<o:p></o:p></span></p><p class=MsoNormal><span lang=ZH-CN>"
            "派出所户籍窗口</span><span lang=EN-US>3</span><span lang=ZH-CN>号窗口工作人员态度"
            "恶劣。</span><span lang=EN-US><o:p>&nbsp;</o:p></span></p></div></body></html>")
    head = _HEAD.format(name=_b64("赵六"), subject=_b64("窗口态度"), i=i)
    return (head + "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + _b64(html) + "\r\n").encode()


def _stdlib(raw: bytes) -> str:
    """The baseline: what the stdlib alone does for the same letter (no fallbacks, no checks)."""
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    body = msg.get_body(("plain", "html"))
    return str(msg["subject"]) + str(msg["from"]) + (body.get_content() if body else "")


def measure(build: Callable[[int], bytes], n: int, rounds: int) -> float:
    """Median milliseconds per parse over ``rounds`` rounds of ``n`` distinct letters."""
    parse = _stdlib if build is stdlib_letter else parse_message
    letters = [build(i) for i in range(n)]
    for raw in letters[:50]:
        parse(raw)
    times = []
    for _ in range(rounds):
        t0 = time.process_time()
        for raw in letters:
            parse(raw)
        times.append((time.process_time() - t0) / n * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, rounds = (500, 3) if args.quick else (3000, 7)
    figures = {}
    for name, build in (("short UTF-8 letter", short_letter),
                        ("Foxmail GBK alternative", foxmail_letter),
                        ("Outlook HTML letter", outlook_html_letter)):
        figures[name] = measure(build, n, rounds)
        print(f"{name:<26} {figures[name]:6.3f} ms per parse")
    base = measure(stdlib_letter, n, rounds)
    print(f"{'stdlib parse + get_body':<26} {base:6.3f} ms per parse (baseline, same short letter)")
    ratio = figures["short UTF-8 letter"] / base
    print(f"short letter: {figures['short UTF-8 letter']:.3f} ms, {ratio:.2f}x the bare stdlib "
          "parse (target: near 0.16 ms on the reference machine)")
    return 0


def stdlib_letter(i: int) -> bytes:
    return short_letter(i)


if __name__ == "__main__":
    sys.exit(main())
