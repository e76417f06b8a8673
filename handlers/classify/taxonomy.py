"""Parse the published rectification report into the label taxonomy.

The classifier's label set comes from section 二 (整改落实情况) of the report: each heading
``(一)关于“…”问题的整改情况`` is a category ("1".."10") and each numbered line under it is a
measure ("N.M"). A category whose body is one unnumbered paragraph (category 9 in the 2021
report) gets a single measure whose id is the category id. The parser keys on the document's
shape, not on its wording, so a later report of the same shape parses too. The taxonomy carries
a content hash (``version``) so each submission records which taxonomy it was classified under.

No library parses this government-report layout, so the few regular expressions below are ours.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SHIPPED_REPORT = Path(__file__).parent / "data" / "report.txt"

_CN_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
# Top-level section heading such as "二、整改落实情况".
_SECTION = re.compile(r"^\s*([一二三四五六七八九十]+)、")
# Category heading: "(一)关于“…”问题的整改情况。" with ASCII or full-width brackets.
_CATEGORY = re.compile(r"^\s*[(（]([一二三四五六七八九十]+)[)）]\s*(.*)$")
# Numbered measure: "1.将…" / "1、…" / "1．…"
_MEASURE = re.compile(r"^\s*(\d{1,3})\s*[.．、]\s*(.+)$")
# The category title is the quoted problem statement; quotes may nest (“‘三不’机制”).
_TITLE = re.compile(r"关于[“\"](.+)[”\"]\s*问题")
# Quoted names in the report (“雪亮工程”, “三会一课”) become segmentation words.
_QUOTED = re.compile(r"[“\"《]([\u4e00-\u9fff]{2,8})[”\"》]")


class TaxonomyError(ValueError):
    """The text does not have the shape of a rectification report."""


@dataclass(frozen=True)
class Measure:
    id: str
    text: str


@dataclass(frozen=True)
class Category:
    id: str
    title: str
    measures: tuple[Measure, ...]
    body: str = ""  # full text of the section, kept for the taxonomy-only model


@dataclass(frozen=True)
class Taxonomy:
    categories: tuple[Category, ...]
    version: str = ""
    terms: tuple[str, ...] = field(default=())  # quoted names, used as jieba words

    @property
    def labels(self) -> list[str]:
        """Every category label the classifier may output, in a stable order."""
        return [c.id for c in self.categories] + ["other", "spam"]

    def category(self, cid: str) -> Category | None:
        return next((c for c in self.categories if c.id == cid), None)

    def measure(self, mid: str) -> Measure | None:
        cat = self.category(mid.split(".")[0])
        if cat is None:
            return None
        return next((m for m in cat.measures if m.id == mid), None)

    @property
    def measures(self) -> list[Measure]:
        return [m for c in self.categories for m in c.measures]

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "terms": list(self.terms),
            "categories": [
                {
                    "id": c.id,
                    "title": c.title,
                    "measures": [{"id": m.id, "text": m.text} for m in c.measures],
                }
                for c in self.categories
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Taxonomy:
        """Inverse of ``to_dict`` (used to rebuild a saved model)."""
        cats = tuple(
            Category(c["id"], c["title"], tuple(Measure(m["id"], m["text"]) for m in c["measures"]))
            for c in data["categories"]
        )
        return cls(cats, version=data["version"], terms=tuple(data.get("terms", ())))

    def render(self) -> str:
        """Human-readable tree for ``feedback-bot taxonomy show``."""
        lines = [f"taxonomy {self.version}: {len(self.categories)} 类, {len(self.measures)} 项措施"]
        for c in self.categories:
            lines.append(f"{c.id}  {c.title}")
            for m in c.measures:
                text = m.text if len(m.text) <= 60 else m.text[:59] + "…"
                lines.append(f"    {m.id:<6}{text}")
        lines.append("other  其他（不属于以上各类的群众反映）")
        lines.append("spam   垃圾信息（广告、钓鱼、乱码、群发）")
        return "\n".join(lines)


def cn_number(text: str) -> int:
    """Chinese numeral 1..99 ("十", "十二", "二十一") to int."""
    if "十" not in text:
        return _CN_DIGITS[text]
    tens, _, ones = text.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _section_two(lines: list[str]) -> list[str]:
    """Lines between the 二、 heading and the next top-level heading."""
    start = end = None
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if not m:
            continue
        if start is None and cn_number(m.group(1)) == 2:
            start = i + 1
        elif start is not None:
            end = i
            break
    if start is None:
        raise TaxonomyError("未找到“二、整改落实情况”部分")
    return lines[start:end]


def _title(heading: str) -> str:
    m = _TITLE.search(heading)
    return (m.group(1) if m else heading).strip(" 。")


def _build_category(cid: str, heading: str, body: list[str]) -> Category:
    measures: list[Measure] = []
    loose: list[str] = []
    for line in body:
        m = _MEASURE.match(line)
        if m:
            measures.append(Measure(f"{cid}.{int(m.group(1))}", m.group(2).strip()))
        elif measures:  # a continuation line belongs to the measure above it
            last = measures[-1]
            measures[-1] = Measure(last.id, f"{last.text}{line.strip()}")
        else:
            loose.append(line.strip())
    if not measures and loose:
        measures = [Measure(cid, "".join(loose))]
    return Category(cid, _title(heading), tuple(measures), body="\n".join(body))


def parse_report(text: str) -> Taxonomy:
    """Parse report text into a Taxonomy (raises TaxonomyError on the wrong shape)."""
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    categories: list[Category] = []
    heading: tuple[str, str] | None = None
    body: list[str] = []
    for line in _section_two(lines):
        m = _CATEGORY.match(line)
        if m:
            if heading:
                categories.append(_build_category(*heading, body))
            heading, body = (str(cn_number(m.group(1))), m.group(2)), []
        elif heading:
            body.append(line)
    if heading:
        categories.append(_build_category(*heading, body))
    if not categories:
        raise TaxonomyError("“二、整改落实情况”部分没有“(一)…”形式的问题类别")
    terms = tuple(sorted(set(_QUOTED.findall(text))))
    tax = Taxonomy(tuple(categories), terms=terms)
    digest = hashlib.sha256(
        json.dumps(tax.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8")
    ).hexdigest()
    return Taxonomy(tax.categories, version=f"t-{digest[:12]}", terms=terms)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Parse the report at ``path``; None means the report shipped with the project."""
    raw = (path or SHIPPED_REPORT).read_bytes()
    return parse_report(raw.decode("utf-8-sig"))


def check_report_file(path: Path) -> Taxonomy:
    """The taxonomy of a configured report, or a ValueError that says what is wrong with the
    file in words an operator can act on (the configuration check shows it as it is)."""
    try:
        return load_taxonomy(path)
    except FileNotFoundError:
        raise ValueError(f"报告文件不存在 / report file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"无法读取报告文件 / cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"报告文件不是 UTF-8 文本，请另存为 UTF-8 / {path} is not UTF-8 text") from None
    except TaxonomyError as exc:
        raise ValueError(f"{path} 中没有解析出整改类别（{exc}）/ no categories found in "
                         "section 二 of the report") from None
