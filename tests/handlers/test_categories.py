"""handlers.categories: the configured report's titles, and an earlier report's for the letters
classified under it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers import categories
from handlers.classify import load_taxonomy

REPORT_B = Path(__file__).resolve().parents[1] / "data" / "reports" / "second_report.txt"


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = categories._active
    yield
    categories._active = before


def test_the_configured_report_names_the_categories(tmp_path: Path) -> None:
    tax_a, tax_b = load_taxonomy(), load_taxonomy(REPORT_B)
    archive = tmp_path / "taxonomies"
    a = categories.use(None, archive)
    one_a = tax_a.category("1").title
    assert categories.titles()["1"] == one_a and len(categories.titles()) == 10

    categories.use(REPORT_B, archive)
    assert categories.titles() == {c.id: c.title for c in tax_b.categories}
    assert categories.measure_texts()["3.2"].startswith("法律援助申请材料齐全")
    # A letter of the first report is still named by it, from the archive.
    assert categories.titles(tax_a.version)["1"] == one_a
    archived = categories.active().of(tax_a.version)
    assert archived is not None and a.current is not None
    assert (archived.version, archived.measures) == (a.current.version, a.current.measures)
    assert not categories.active().is_current(tax_a.version)
    assert categories.active().is_current(None)  # unclassified mail: the configured report
    assert sorted(p.stem for p in archive.iterdir()) == sorted([tax_a.version, tax_b.version])


def test_an_earlier_report_is_found_in_the_archive_only(tmp_path: Path) -> None:
    future = tmp_path / "future.txt"
    future.write_text(REPORT_B.read_text(encoding="utf-8").replace("法律援助", "司法救助"),
                      encoding="utf-8")
    categories.use(future, tmp_path / "archive-1")
    version = categories.taxonomy().version
    categories.use(REPORT_B, tmp_path / "archive-2")  # another var/: no record of ``future``
    assert categories.titles(version) == {}
    assert categories.active().of(version) is None
    # Not a taxonomy name: never read as a file name.
    assert categories.titles("../../etc/passwd") == {}
    # The shipped report needs no archive.
    assert categories.titles(load_taxonomy().version)["7"] == "一体推进‘三不’机制有效举措不多"
