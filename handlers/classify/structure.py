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
from collections.abc import Sequence

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
_CUE = re.compile("|".join(map(re.escape, sorted(_ROLE_OF, key=len, reverse=True))))


def structure(words: str, has_subject: bool) -> str:
    """The structure tokens of one letter, space-separated, from its ``Normaliser`` words
    (``has_subject``: its first line is the subject)."""
    out: list[str] = []
    if has_subject:  # the Normaliser put it on the first line
        subject, _, words = words.partition("\n")
        out += ["s:" + w for w in subject.split()]
    # Sentences: the lines, and a "?" ends one within a line.
    sents = [toks for toks in map(str.split, words.replace("?", "?\n").split("\n")) if toks]
    if not sents:
        return " ".join(out)
    closing = -1
    for i in range(len(sents) - 1, -1, -1):
        if len(sents[i]) >= MIN_TOKENS:
            closing = i
            break
    if closing >= 0:
        out += ["e:" + w for w in sents[closing]]
    first: dict[str, int] = {}
    for i, toks in enumerate(sents):
        # One search per sentence for every role's cues (most sentences have none), on its
        # text without spaces, so a cue that jieba split or joined to a neighbour counts.
        found = _CUE.findall("".join(toks))
        if not found:
            continue
        for role in sorted({_ROLE_OF[c] for c in found}):
            first.setdefault(role, i)
            prefix = role + ":"
            out += [prefix + w for w in toks]
            out.append("#" + role)
            if i == closing:
                out.append(f"#{role}@end")
    out += [f"#{role}@{i * POSITIONS // len(sents)}" for role, i in first.items()]
    return " ".join(out)


def structures(words: Sequence[str], items: Sequence[tuple[str, str]]) -> list[str]:
    """``structure`` of a batch: the Normaliser's word strings and the (subject, body) pairs
    they came from. A subject of only blanks is none (the Normaliser dropped it)."""
    return [structure(w, bool(s and s.strip())) for w, (s, _) in zip(words, items, strict=True)]
