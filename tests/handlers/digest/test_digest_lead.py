"""What leaders read (handlers/digest/lead.py): 三率, 按期, the overdue list and the themes of a
week, counted by hand from cases written straight into storage (SQLite and PostgreSQL), and what
the digest's HTML, text and XLSX show of them — never a 举报's number or words."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta

import openpyxl
import pytest

from handlers.digest.lead import themes
from handlers.digest.render import CHART_CATEGORIES, chart_series
from handlers.digest.titles import short_title
from handlers.repeats import DEFAULT_NGRAM, DEFAULT_THRESHOLD
from storage.digests import WeekRow
from tests.handlers.digest.test_digest_build import Db, build_w47, local
from tests.handlers.digest.test_digest_build import fill as fill_base

SECRET_REPORT = "副所长收受红包插手案件"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Db]:
    d = Db(db_url)
    await fill_base(d)
    yield d
    await d.engine.dispose()


async def fill(d: Db) -> None:
    # Acceptance due in W47 (Nov 16–22) = received Nov 1–7: decided on day 15 (on time), on
    # day 16 (late), never (late, overdue), refused on day 3 (on time).
    await d.add(local(1), "1", status="accepted", accepted_at=local(16, 9))
    await d.add(local(2), "1", status="accepted", accepted_at=local(18))
    await d.add(local(3), "2", status="new")
    await d.add(local(4), "2", status="rejected", accepted_at=local(7))
    # Handling due in W47 = accepted Sep 17–23 (60 days), or 30 days earlier when extended by 30:
    # answered on its last day (on time), answered a day late, still open (overdue 5 days at
    # Nov 22), and one extended 30 days answered on Nov 20 (on time thanks to the extension).
    await d.add(local(1, month=9), "3", status="resolved", accepted_at=local(17, month=9),
                resolved_at=local(16, 20), satisfaction="基本满意")
    await d.add(local(2, month=9), "3", status="resolved", accepted_at=local(18, month=9),
                resolved_at=local(18), satisfaction="不满意")
    await d.add(local(3, month=9), "3", status="in_progress", accepted_at=local(19, month=9))
    await d.add(local(1, month=8), "3", status="resolved", accepted_at=local(22, month=8),
                resolved_at=local(20), extended_days=30, satisfaction="满意")
    # A 举报, overdue for acceptance: counted, never listed or quoted.
    await d.add(local(5), "4", status="new", restricted=True, text=SECRET_REPORT + "，请核查。")
    # A theme: three letters of W47 about the same event, reworded; an unrelated one; and the
    # 举报's words repeated by a second 举报 (never a theme).
    for day, text in ((17, "幸福路派出所门口的违章停车堵了半年，报警好几次都没人来处理，孩子上学很危险。"),
                      (18, "幸福路派出所门口违章停车堵了半年了，报了好几次警没人处理，孩子上学太危险。"),
                      (19, "幸福路派出所门口长期违章停车，堵了半年，报警几次没人处理，孩子上学危险。")):
        await d.add(local(day), "6", text=text)
    await d.add(local(20), "6", text="建议法院诉讼服务中心周末开放，方便上班族办理立案手续。")
    await d.add(local(21), "4", restricted=True, text=SECRET_REPORT + "，请核查。")


async def test_three_rates_and_on_time_rates(db: Db) -> None:
    await fill(db)
    lead = (await build_w47(db)).figures.lead
    rates = {r.key: (r.done, r.of) for r in [*lead.rates, *lead.on_time]}
    # 响应率: due in W47: the four of Nov 1–4, the 举报 of Nov 5, the base fixture's Nov 1/2/3
    # cases (new; accepted Nov 25; refused Nov 25) → on time: day 15 and the refusal on day 3.
    assert rates["response"] == (2, 8)
    # 办结率: due in W47: last-day answer, late answer, still open, extended answer.
    assert rates["resolution"] == (2, 4)
    # 满意率 over W47's answers that were rated: 基本满意, 不满意, 满意 (+ the base fixture's 满意,
    # 不满意) → 3 of 5.
    assert rates["satisfaction"] == (3, 5)
    # 按期受理率: W47's decisions: day 15 (on time), day 16 (late), and the base fixture's four.
    done, of = rates["on_time_accept"]
    assert (done, of) == (5, 6)
    # 按期办结率: W47's answers: on time ×2 (extension counted), a day late, + base fixture's 2.
    assert rates["on_time_handle"] == (4, 5)


async def test_overdue_list_names_numbers_never_a_report(db: Db) -> None:
    await fill(db)
    built = await build_w47(db)
    lead = built.figures.lead
    listed = {o.tracking_no: (o.stage, o.days) for o in lead.overdue}
    # The open handling case accepted Sep 19: due Nov 18, 4 days overdue at Nov 22.
    open_case = next(tn for tn, (stage, days) in listed.items() if stage == "办结" and days == 4)
    assert open_case
    # The Nov 3 case never decided: due Nov 18.
    assert ("受理", 4) in listed.values()
    assert lead.overdue_reports == 1
    report_no = await _tracking_no_of(db, SECRET_REPORT)
    assert len(report_no) == 2 and not set(report_no) & set(listed)
    # The XLSX's week sheet lists every letter, a 举报 as a row without its words (as before);
    # its sheet of rates and overdue cases names no 举报.
    for body in (built.text, built.html, built.console_html, _cells(built.xlsx, "三率与超期")):
        assert "响应率" in body and "办结率" in body and "满意率" in body and "按期" in body
        assert SECRET_REPORT not in body
        for tn in report_no:
            assert tn not in body
        assert open_case in body


async def test_themes_cluster_the_week_letters_and_leave_reports_out(db: Db) -> None:
    await fill(db)
    built = await build_w47(db)
    themes = built.figures.lead.themes
    parking = [t for t in themes if "停车" in t.sample]
    assert len(parking) == 1 and parking[0].size == 3
    assert parking[0].category.startswith("第六类")
    assert not any("诉讼服务中心" in t.sample for t in themes)
    assert not any(SECRET_REPORT[:4] in t.sample for t in themes)
    assert "3 件相同或相近的来信" in built.text


async def test_chart_shows_at_most_five_categories(db: Db) -> None:
    await fill(db)
    f = (await build_w47(db)).figures
    assert len(f.trend) > CHART_CATEGORIES
    shown = chart_series(f)
    assert len(shown) == CHART_CATEGORIES
    totals = sorted((sum(v) for v in f.trend.values()), reverse=True)
    assert sorted((sum(v) for v in shown.values()), reverse=True) == totals[:CHART_CATEGORIES]


async def test_digest_page_is_made_for_a_phone(db: Db) -> None:
    built = await build_w47(db)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in built.html
    assert 'width="900"' not in built.console_html


def test_short_titles_cut_at_phrase_or_word_never_inside_a_quote() -> None:
    assert short_title("意识形态责任制落实不够到位") == "意识形态责任制落实不够到位"
    assert short_title("抓教育整顿面上协调、条块统筹、督查检查的力度还不大") == "抓教育整顿面上协调、条块统筹…"
    assert short_title("贯彻落实《中国共产党政法工作条例》,高质量履职尽责尚存相对薄弱环节") \
        == "贯彻落实《中国共产党政法工作条例》…"
    long_quote = short_title("‘不忘初心、牢记使命’主题教育检视问题整改落实不够彻底")
    assert long_quote.startswith("‘不忘初心、牢记使命’") and long_quote.endswith("…")
    assert len(long_quote) <= 18
    # No phrase fits: whole words, not half of one.
    cut = short_title("全面加强政法系统党的建设统筹推进效果不够突出")
    assert cut.endswith("…") and not cut.endswith("推…") and len(cut) <= 18


async def _tracking_no_of(d: Db, words: str) -> list[str]:
    from sqlalchemy import select

    from storage.models import Submission

    async with d.sessions() as s:
        return list(await s.scalars(select(Submission.tracking_no)
                                    .where(Submission.text.contains(words))))


def _cells(data: bytes, sheet: str) -> str:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return " ".join(str(c) for row in wb[sheet].iter_rows(values_only=True)
                    for c in row if c is not None)



async def test_an_open_extended_case_is_overdue_only_past_its_extended_deadline(db: Db) -> None:
    """Cases still being handled with an extension: one within its 60 + 30 days at the week's
    end, one past them; only the second is listed and counted overdue."""
    # Accepted Aug 20 + 90 days = Nov 18 (4 days overdue at Nov 22); accepted Sep 10 + 90 days =
    # Dec 9 (on time, though its 60 days ended Nov 9).
    before = (await build_w47(db)).figures.lead
    await db.add(local(1, month=8), "3", status="in_progress", accepted_at=local(20, month=8),
                 extended_days=30)
    late_no = f"FK{db.n:08d}"
    await db.add(local(1, month=9), "3", status="in_progress", accepted_at=local(10, month=9),
                 extended_days=30)
    in_time_no = f"FK{db.n:08d}"
    lead = (await build_w47(db)).figures.lead
    listed = {o.tracking_no: (o.stage, o.days) for o in lead.overdue}
    assert listed[late_no] == ("办结", 4)
    assert in_time_no not in listed
    assert lead.overdue_handle == before.overdue_handle + 1


def _letter(i: int, text: str, name: str | None = None) -> WeekRow:
    return WeekRow(id=i, tracking_no=f"FK{i:08d}", received_at=local(16) + timedelta(minutes=i),
                   channel="web", category="6", measure=None, status="new", subject="来信",
                   text=text, new_text=None, from_name=name, confidence=None, restricted=False)


def test_a_campaign_of_copies_is_one_theme_with_every_copy_counted() -> None:
    # A campaign: 40 copies of one letter, 20 of them signed with another name and phone
    # (digits and the writer are not what a letter is about), 2 rewordings, and a letter on
    # something else; a second, smaller campaign of 5 copies. Copies are cut into shingles and
    # looked up once: each must still be counted in its theme.
    base = "幸福路派出所门口的违章停车堵了半年，报警好几次都没人来处理，孩子上学很危险。"
    rows = [_letter(i, base) for i in range(1, 21)]
    rows += [_letter(i, f"我叫王{'建国红梅卫东'[i % 6]}，电话1391234{i:04d}。" + base, "王某")
             for i in range(21, 41)]
    rows += [_letter(41, "幸福路派出所门口违章停车堵了半年了，报了好几次警没人处理，孩子上学太危险。"),
             _letter(42, "幸福路派出所门口长期违章停车，堵了半年，报警几次没人处理，孩子上学危险。"),
             _letter(43, "建议法院诉讼服务中心周末开放，方便上班族办理立案手续。")]
    rows += [_letter(i, "小区东门的路灯坏了三个月，晚上老人孩子出门不安全，请尽快修好。")
             for i in range(44, 49)]
    found = themes(rows, [], lambda c: f"第{c}类", threshold=DEFAULT_THRESHOLD,
                   ngram=DEFAULT_NGRAM)
    assert [(t.size, t.tracking_nos[0]) for t in found] == [(42, "FK00000001"),
                                                             (5, "FK00000044")]
    assert "停车" in found[0].sample and "路灯" in found[1].sample
