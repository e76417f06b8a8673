"""The first-character scan finds exactly what the plain pattern finds.

The urgency and 举报 cues are scanned with :class:`FirstCharPattern` for speed; a cue it missed
would be an urgent letter left in the queue or a 举报 shown to every reviewer. So every cue
pattern is checked against ``re`` itself on every labelled letter the project has.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from handlers.classify import restrict, urgent
from handlers.classify import text as normalise
from handlers.classify.firstchar import FirstCharPattern, first_chars
from handlers.classify.text import Normaliser

REPO = Path(__file__).resolve().parents[3]
LETTER_FILES = [REPO / "handlers/classify/data/corpus.jsonl",
                REPO.parent / "shared/data/feedback_dev.jsonl",
                *sorted((REPO / "tests/data").glob("*.jsonl"))]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Every labelled letter, as the cues read it (normalised) and as written (lower-cased)."""
    norm = Normaliser()
    out = []
    for path in LETTER_FILES:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            subject, body = item.get("subject") or "", item.get("body") or ""
            out.append(norm.clean(f"{subject}\n{body}" if subject else body))
            out.append(f"{subject}\n{body}".lower())
    assert len(out) > 3000
    return out


CUE_PATTERNS = [
    *(p for _, p in urgent.CUES + urgent.INDIRECT_CUES + urgent.ENGLISH_CUES
      + urgent.ENGLISH_INDIRECT),
    *restrict.CUES, restrict.ENGLISH_CUES, urgent._ENGLISH_ANY, normalise._NOISE,
]


@pytest.mark.parametrize("cue", CUE_PATTERNS, ids=lambda p: p.pattern.pattern[:12])
def test_scan_finds_what_re_finds_on_every_labelled_letter(cue: FirstCharPattern,
                                                           texts: list[str]) -> None:
    hits = 0
    for text in texts:
        expected = [m.span() for m in cue.pattern.finditer(text)]
        assert list(cue.spans(text)) == expected, text[:80]
        first = cue.pattern.search(text)
        assert cue.search(text) == (first.span() if first else None)
        hits += bool(expected)
    assert hits, "a cue no labelled letter has: the comparison would show nothing"


def test_overlapping_candidates_are_left_out_as_finditer_does() -> None:
    # 打我 starts inside 家暴打我's match of the first branch's longer alternative
    cue = FirstCharPattern(r"家暴打我|打我一顿|暴打")
    text = "他家暴打我一顿，又暴打了一次"
    assert list(cue.spans(text)) == [m.span() for m in cue.pattern.finditer(text)]
    assert [text[a:b] for a, b in cue.spans(text)] == ["家暴打我", "暴打"]


@pytest.mark.parametrize("pattern", [r"\d+个人", r"[^。]{0,3}跳楼", r"(?:跳楼)?", r"a*"])
def test_unknown_first_characters_fall_back_to_the_plain_pattern(pattern: str) -> None:
    assert first_chars(pattern) is None
    cue = FirstCharPattern(pattern)
    text = "有30个人说要跳楼，aa"
    assert list(cue.spans(text)) == [m.span() for m in re.finditer(pattern, text)]


def test_first_characters_of_groups_classes_and_lookarounds() -> None:
    assert first_chars(r"(?<![相有])(?:猫|狗)[^。]{0,8}送给|[撬剪]锁|(?:明天)?去政府") == \
        frozenset("猫狗撬剪明去")


def test_noise_is_removed_as_the_ascii_pattern_removed_it(texts: list[str]) -> None:
    """URLs, addresses and long digit runs go exactly as ``\\w``/``\\d`` under re.ASCII took
    them (the scan needs the classes written out), and sub() splices as re.sub does."""
    ascii_noise = re.compile(r"https?://[!-~]+|www\.[!-~]+|[\w.+-]+@[a-z0-9.-]+|\d{5,}", re.ASCII)
    edge = ["写信到 a_b.c+d@qq.com 或 x@163.com，电话 13912345678，见 http://x.cn/a?b=1 www.a.cn",
            "１２３４５６ 是全角的，12345 不是；é@x.cn ü_1@a.b ٣٤٥٦٧٨", "@", "", "a@", "_@_"]
    changed = 0
    for t in [*texts, *edge]:
        assert normalise._NOISE.sub(" ", t) == ascii_noise.sub(" ", t), t[:80]
        changed += normalise._NOISE.sub(" ", t) != t
    assert changed > 10
