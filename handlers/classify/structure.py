"""The parts of a letter that say what it wants, as tokens of their own for the kind model.

A long letter tells its story before it asks, proposes, thanks or accuses, so in a bag of
words over the whole letter the story outweighs the one sentence that decides its kind:
almost every long letter looked like a complaint. This module picks out that sentence and
its neighbours from the normalised word tokens (``Normaliser``, whose line breaks separate
sentences and whose "?" ends one):

- the subject line, which often names the request ("咨询…", "感谢信", "举报…");
- the last sentence with some content (a closing "此致 敬礼" or a signature has little),
  where letters put their request;
- every sentence that asks (？, 吗, 请问 …), requests or proposes (建议, 希望 …), thanks
  (感谢 …) or accuses (举报 …), with where the first such sentence stands in the letter.

Each part's words become prefixed tokens ("e:请问" for a word of the closing, "q:材料" for a
word of a question sentence, "#q@end" for a question that is the closing) in a TF-IDF
block of their own (``features.py``; the service's ``Scorer`` reads the same string), so the
model can weigh "请问 at the end" apart from "请问 somewhere in the story". The cue lists name
the speech acts in general Chinese usage, not phrases of any letter; the model learns how much
each part counts.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

# Words that mark a sentence as asking, requesting or proposing, thanking, or accusing. A
# sentence is matched on its text (tokens joined), so a cue inside a longer jieba word counts.
ROLES: dict[str, tuple[str, ...]] = {
    "q": ("?", "吗", "请问", "能否", "是否", "怎么办"),
    "r": ("建议", "希望", "请求", "恳请", "能不能"),
    "t": ("感谢", "谢谢", "致敬"),
    "a": ("举报", "实名", "收受", "索要"),
}
MIN_TOKENS = 4  # fewer words: a greeting, "此致", a signature; not content
POSITIONS = 4  # where the first sentence of a role stands: which quarter of the letter
_ROLE_OF = {cue: role for role, cues in ROLES.items() for cue in cues}
# A cue may span tokens ("怎么 办"): spaces may stand between its characters.
_CUE = re.compile("|".join(" *".join(map(re.escape, cue))
                           for cue in sorted(_ROLE_OF, key=len, reverse=True)))


def structure(words: str, has_subject: bool) -> str:
    """The structure tokens of one letter, space-separated, from its ``Normaliser`` words
    (``has_subject``: its first line is the subject)."""
    # Each part is one string of prefixed tokens, joined in C ("e:" + " e:".join(...)), and
    # the cues are found by one search over the whole letter: a token or a sentence at a time
    # in Python cost a tenth of the scorer's time per letter.
    out: list[str] = []
    if has_subject:  # the Normaliser put it on the first line
        subject, _, words = words.partition("\n")
        if subject.split():
            out.append("s:" + " s:".join(subject.split()))
    text = words.replace("?", "?\n")  # a "?" ends a sentence within a line
    lines = text.split("\n")
    number = []  # each line's number among the sentences (lines with a word), or -1
    n = 0
    for line in lines:
        if line and not line.isspace():
            number.append(n)
            n += 1
        else:
            number.append(-1)
    if not n:
        return " ".join(out)
    closing = -1
    for i in range(len(lines) - 1, -1, -1):
        if number[i] >= 0 and len(lines[i].split()) >= MIN_TOKENS:
            closing = i
            break
    if closing >= 0:
        out.append("e:" + " e:".join(lines[closing].split()))
    found: set[tuple[int, str]] = set()  # (line, role) of each cue
    matches = list(_CUE.finditer(text))
    if matches:
        starts = _starts(lines)
        found = {(bisect_right(starts, m.start()) - 1, _ROLE_OF[m.group().replace(" ", "")])
                 for m in matches}
    first: dict[str, int] = {}
    said: dict[str, set[str]] = {}  # each role's words, once each (a letter may repeat itself)
    for i, role in sorted(found):
        first.setdefault(role, number[i])
        said.setdefault(role, set()).update(lines[i].split())
        out.append("#" + role)
        if i == closing:
            out.append(f"#{role}@end")
    out += [f"{role}:" + f" {role}:".join(toks) for role, toks in said.items()]  # any order
    out += [f"#{role}@{i * POSITIONS // n}" for role, i in first.items()]
    return " ".join(out)


def _starts(lines: list[str]) -> list[int]:
    """The offset of each line in the text they were split from by "\\n"."""
    return list(accumulate((len(line) + 1 for line in lines[:-1]), initial=0))


def structures(words: Sequence[str], items: Sequence[tuple[str, str]]) -> list[str]:
    """``structure`` of a batch: the Normaliser's word strings and the (subject, body) pairs
    they came from. A subject of only blanks is none (the Normaliser dropped it)."""
    return [structure(w, bool(s and s.strip())) for w, (s, _) in zip(words, items, strict=True)]
