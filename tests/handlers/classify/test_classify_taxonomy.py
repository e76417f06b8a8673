"""The report parser: the shipped report's tree, and a future report of the same shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.classify import Taxonomy, TaxonomyError, load_taxonomy
from handlers.classify.taxonomy import parse_report

FUTURE_REPORT = """关于市委政法委2024年巡察整改进展情况的通报
一、整改工作基本情况
（一）提高站位。认真研究部署。
二、整改落实情况
（一）关于“矛盾纠纷化解不够及时”问题的整改情况。
1、建立矛盾纠纷多元化解中心。
2、推行“一站式”调处，
全年调处纠纷三千件。
（二）关于“网上办事不够便捷”问题的整改情况。
开发掌上办事小程序，实现二十项事项网上办理。
（十一）关于“经费管理不规范”问题的整改情况。
1.规范经费审批。
三、下一步工作打算
（一）持续整改。
"""


def test_shipped_report_has_ten_categories_and_67_measures() -> None:
    tax = load_taxonomy()
    assert [c.id for c in tax.categories] == [str(i) for i in range(1, 11)]
    assert len(tax.measures) == 67
    assert [m.id for m in tax.category("1").measures][-1] == "1.13"
    assert tax.category("7").title == "一体推进‘三不’机制有效举措不多"
    assert tax.measure("1.10").text.startswith("持续深化诉讼服务中心")
    assert tax.labels[-2:] == ["other", "spam"]


def test_unnumbered_category_becomes_one_measure_with_the_category_id() -> None:
    nine = load_taxonomy().category("9")
    assert [m.id for m in nine.measures] == ["9"]
    assert "81项" in nine.measures[0].text


def test_next_section_is_not_parsed_as_categories() -> None:
    # Section 三 also has (一)(二)(三) headings; they must not become categories 1..3 again.
    tax = load_taxonomy()
    assert all("提高认识" not in c.title for c in tax.categories)


def test_future_report_of_the_same_shape_parses() -> None:
    tax = parse_report(FUTURE_REPORT)
    assert [(c.id, c.title) for c in tax.categories] == [
        ("1", "矛盾纠纷化解不够及时"),
        ("2", "网上办事不够便捷"),
        ("11", "经费管理不规范"),
    ]
    one = tax.category("1")
    assert [m.id for m in one.measures] == ["1.1", "1.2"]
    assert one.measures[1].text.endswith("全年调处纠纷三千件。")  # continuation line joined
    assert [m.id for m in tax.category("2").measures] == ["2"]


def test_version_is_a_content_hash() -> None:
    a, b = parse_report(FUTURE_REPORT), parse_report(FUTURE_REPORT)
    changed = parse_report(FUTURE_REPORT.replace("三千件", "四千件"))
    assert a.version == b.version != changed.version
    assert a.version != load_taxonomy().version


def test_text_without_section_two_is_refused() -> None:
    with pytest.raises(TaxonomyError):
        parse_report("一、基本情况\n没有整改落实部分。")


def test_round_trip_through_dict() -> None:
    tax = load_taxonomy()
    again = Taxonomy.from_dict(tax.to_dict())
    assert again.version == tax.version
    assert again.measures == tax.measures and again.terms == tax.terms


def test_load_from_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes("\ufeff".encode() + FUTURE_REPORT.encode("utf-8"))
    assert len(load_taxonomy(path).categories) == 3
