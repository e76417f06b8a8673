"""Building one week's digest from a database filled with a known set of submissions.

Two weeks of submissions (2026-W46 and W47, Asia/Shanghai) are written straight into storage
with their received/accepted/resolved times; the digest of W47 must report exactly what a person
counting them by hand would, mask the citizens' personal data everywhere it quotes them, carry the
chart inline by Content-ID and the week's rows as an XLSX attachment.
"""

from __future__ import annotations

import email
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from bot.runtime import mail_templates
from handlers import tracking
from handlers.digest import Built, Options, Week, build
from storage import submissions
from storage.db import make_engine, sessionmaker

TZ = ZoneInfo("Asia/Shanghai")
W47 = Week(2026, 47)
PUBLIC = "https://feedback.example.gov.cn"
PII = ("13812345678", "110101199003071234", "zhang.jianguo@example.com", "张建国", "李红梅",
       "0371-66123456")


def local(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ)


class Db:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine)
        self.n = 0

    async def add(self, received: datetime, category: str = "1", **fields: object) -> None:
        self.n += 1
        updated = fields.pop("updated_at", None)
        fields.setdefault("text", f"第{self.n}封来信：小区附近的治安问题需要解决，请尽快处理。")
        fields.setdefault("channel", "web")
        async with self.sessions.begin() as s:
            sub = await submissions.add(s, tracking_no=f"FK{self.n:08d}", category=category,
                                        received_at=received, **fields)
            if updated is not None:
                sub.updated_at = updated


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Db]:
    d = Db(db_url)
    await fill(d)
    yield d
    await d.engine.dispose()


async def fill(d: Db) -> None:
    # Week 46 (Nov 9–15): category 1 ×2, category 2 ×3; the last one a minute before midnight.
    for day in (10, 11):
        await d.add(local(day), "1")
    for day in (12, 13):
        await d.add(local(day), "2")
    await d.add(datetime(2026, 11, 15, 23, 59, tzinfo=TZ), "2")
    # Week 47 (Nov 16–22): category 1 ×5 (measure 1.2 ×3, 1.1 ×2), 2 ×1, 3 ×2, other ×1.
    await d.add(local(16), "1", measure="1.2", confidence=0.9, channel="email",
                from_name="张建国", from_addr="zhang.jianguo@example.com",
                text="我叫张建国，手机13812345678，身份证110101199003071234，"
                     "邮箱zhang.jianguo@example.com。派出所接警后一直没有回音，希望督促落实。")
    await d.add(local(17), "1", measure="1.2", confidence=0.8,
                text="市民李红梅反映：座机0371-66123456打了三次都没人接，政法队伍作风问题严重。")
    await d.add(local(18), "1", measure="1.2", confidence=0.7, channel="email")
    await d.add(local(19), "1", measure="1.1", confidence=0.6)
    await d.add(datetime(2026, 11, 22, 23, 30, tzinfo=TZ), "1", measure="1.1")  # Sunday night
    await d.add(local(20), "2", measure="2.1")
    await d.add(local(20), "3")
    await d.add(local(21), "3", channel="phone")
    await d.add(local(21), "other")
    # Excluded: spam ×2, an auto-reply and a bounce.
    await d.add(local(17), "spam")
    await d.add(local(18), "spam", channel="email")
    await d.add(local(18), "unclassified", auto="auto-reply", channel="email")
    await d.add(local(19), "unclassified", auto="bounce", channel="email")
    # Week 48 starts at Monday 00:00 local: not part of W47.
    await d.add(datetime(2026, 11, 23, 0, 30, tzinfo=TZ), "1")
    # Pipeline: accepted in W47 after 1, 2 and 4 days → median 2 days; resolved in W47 after
    # 10 and 20 days → median 15 days, rated 满意 and 不满意.
    for received, accepted in ((local(15), local(16)), (local(17), local(19)),
                               (local(14), local(18))):
        await d.add(received, "4", accepted_at=accepted, status="accepted")
    await d.add(local(8), "5", accepted_at=local(9), resolved_at=local(18), status="resolved",
                satisfaction="满意")
    await d.add(local(29, month=10), "5", accepted_at=local(30, month=10),
                resolved_at=local(18), status="resolved", satisfaction="不满意")
    # Overdue at the end of W47: new since Nov 1 (>15 days), open since Sep 1 (>60 days);
    # a late acceptance (accepted Nov 25, after the week) still counts as overdue then.
    await d.add(local(1), "6", status="new")
    await d.add(local(1, month=9), "6", status="in_progress", accepted_at=local(2, month=9))
    await d.add(local(2), "6", status="accepted", accepted_at=local(25))
    # Closed only after the week: open at its end, so overdue for handling (received Sep 5);
    # rejected only after the week: undecided past its 15 days at the week's end, so overdue
    # for acceptance then (a refusal is a decision, and a late one is late).
    await d.add(local(5, month=9), "6", status="resolved", accepted_at=local(6, month=9),
                resolved_at=local(25))
    await d.add(local(3), "6", status="rejected", accepted_at=local(25))
    # Forwarded during W47.
    await d.add(local(16), "7", status="forwarded", accepted_at=local(20),
                updated_at=local(20).astimezone(UTC))


async def build_w47(d: Db) -> Built:
    opts = Options(timezone="Asia/Shanghai", accept_days=15, handle_days=60, public_url=PUBLIC)
    async with d.sessions() as session:
        return await build(session, W47, opts, mail_templates(), "feedback@zfw.example.gov.cn")


async def test_figures_of_the_week(db: Db) -> None:
    built = await build_w47(db)
    f = built.figures
    # Counted this week: 5 + 1 + 2 + 1 (other) + 1 (category 4) + 1 (category 7) = 11.
    assert f.total == 11
    assert f.last_week_total == 2 + 3 + 2
    assert dict((c, n) for c, _name, n in f.channels) == {"web": 8, "email": 2, "phone": 1}
    by_id = {c.id: c for c in f.categories}
    assert (by_id["1"].count, by_id["1"].last_week, by_id["1"].change) == (5, 2, 3)
    assert by_id["1"].change_pct == 150.0
    assert (by_id["2"].count, by_id["2"].last_week, by_id["2"].change_pct) == (1, 3, -66.7)
    assert by_id["3"].count == 2 and by_id["3"].last_week == 0 and by_id["3"].change_pct is None
    assert by_id["other"].count == 1
    assert [(m.id, m.count) for m in by_id["1"].measures] == [("1.2", 3), ("1.1", 2)]
    assert f.categories[0].id == "1"  # most letters first
    assert by_id["1"].link == f"{PUBLIC}/console?category=1"
    assert dict((k, n) for k, _name, n in f.excluded) == {"spam": 2, "auto-reply": 1, "bounce": 1}
    assert f.excluded_total == 4


async def test_pipeline_health(db: Db) -> None:
    h = (await build_w47(db)).figures.health
    assert h.received == 11
    assert h.accepted == 3 + 1  # three of category 4, one forwarded case
    assert h.resolved == 2
    assert h.forwarded == 1
    assert h.median_resolve_days == 15.0
    # Overdue acceptance: the Nov 1 case still new, the Nov 2 case accepted only on Nov 25 and
    # the Nov 3 case refused only then.
    assert h.overdue_accept == 3
    # Overdue handling: the Sep 1 case still open, and the Sep 5 case resolved only on Nov 25.
    assert h.overdue_handle == 2
    assert h.satisfaction_week == {"满意": 1, "基本满意": 0, "不满意": 1}
    assert h.satisfied_pct_all == 50.0


async def test_medians_over_accepted_cases(db: Db) -> None:
    h = (await build_w47(db)).figures.health
    # Accepted in W47: after 1, 2, 4 days (category 4) and after 4 days (forwarded case):
    # sorted 1, 2, 4, 4 → median (2 + 4) / 2 = 3 days.
    assert h.median_accept_days == 3.0


async def test_trend_covers_twelve_weeks(db: Db) -> None:
    f = (await build_w47(db)).figures
    assert len(f.trend_weeks) == 12 and f.trend_weeks[-1] == "2026-W47"
    assert f.trend_weeks[0] == "2026-W36"
    assert f.trend["1"][-2:] == [2, 5]
    assert f.trend["2"][-2:] == [3, 1]
    assert "spam" not in f.trend


async def test_excerpts_and_everything_sent_are_masked(db: Db) -> None:
    built = await build_w47(db)
    top = {c.id: c.excerpts for c in built.figures.categories if c.excerpts}
    assert set(top) == {"1", "3", "2"}  # the three largest categories, "other" not quoted
    assert 2 <= len(top["1"]) <= 3
    quoted = " ".join(top["1"])
    assert "138****5678" in quoted and "张某某" in quoted
    assert "z***@example.com" in quoted
    assert "派出所接警后一直没有回音" in quoted  # the substance survives the masking
    for body in (built.text, built.html, built.console_html):
        for secret in PII:
            assert secret not in body
    cells = " ".join(str(c) for c in xlsx_cells(built.xlsx))
    for secret in PII:
        assert secret not in cells
    assert "李某某" in cells and "****3456" in cells


async def test_quotes_come_from_the_top_measure_most_confident_first(db: Db) -> None:
    built = await build_w47(db)
    [quotes] = [c.excerpts for c in built.figures.categories if c.id == "1"]
    # Measure 1.2 is category 1's most mentioned: its three letters, confidence 0.9, 0.8, 0.7;
    # not the letters of measure 1.1.
    assert len(quotes) == 3
    assert "派出所接警后一直没有回音" in quotes[0]
    assert "座机" in quotes[1]
    assert quotes[2].startswith("第8封来信")


def xlsx_cells(data: bytes) -> list[object]:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.worksheets[0]
    return [c for row in ws.iter_rows(values_only=True) for c in row if c is not None]


async def test_xlsx_holds_the_weeks_submissions(db: Db) -> None:
    built = await build_w47(db)
    wb = openpyxl.load_workbook(io.BytesIO(built.xlsx), read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    assert rows[0][0] == "受理编号"
    assert len(rows) - 1 == built.xlsx_rows == 11
    stamps = [r[1] for r in rows[1:]]
    assert stamps == sorted(stamps)
    assert stamps[-1] == datetime(2026, 11, 22, 23, 30)  # local time, Sunday night
    assert all(r[0].startswith("FK") for r in rows[1:])


async def test_mail_has_inline_chart_text_alternative_and_attachment(db: Db) -> None:
    built = await build_w47(db)
    [msg_out] = built.messages(["领导 <leader@example.gov.cn>"], "feedback@zfw.example.gov.cn",
                               "市委政法委群众来信", secret=b"k", id_domain="ours.example.gov.cn")
    msg = email.message_from_bytes(msg_out.data, policy=policy.default)
    # Signed, on the configured host: our own mail is known by the HMAC, not by a domain.
    assert msg["Message-ID"].strip("<>").endswith("@ours.example.gov.cn")
    assert tracking.signed_parts(b"k", msg["Message-ID"]) is not None
    assert tracking.verify_message_id(b"k", msg["Message-ID"]) is None  # about no case
    assert msg["To"].addresses[0].addr_spec == "leader@example.gov.cn"
    assert "2026年第47周" in str(msg["Subject"])
    assert msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "本周来信总量：11 件" in text and ">11</span> 件" in html
    [image] = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    png = image.get_content()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == "feedback-2026-W47.xlsx"
    assert len(xlsx_rows(att.get_content())) == 12  # header + 11
    assert f"{PUBLIC}/console?category=1" in html and f"{PUBLIC}/console?category=1" in text
    assert 'src="data:image/png;base64,' in built.console_html


def xlsx_rows(data: bytes) -> list[tuple]:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return list(wb.worksheets[0].iter_rows(values_only=True))


async def test_empty_week_still_builds(db_url: str) -> None:
    d = Db(db_url)
    try:
        built = await build_w47(d)
    finally:
        await d.engine.dispose()
    assert built.figures.total == 0 and built.xlsx_rows == 0
    assert "本周没有来信" in built.text
    assert built.chart_png.startswith(b"\x89PNG")
    assert built.figures.health.median_accept_days is None


def test_week_bounds_follow_the_time_zone() -> None:
    assert W47.start(TZ) == datetime(2026, 11, 15, 16, tzinfo=UTC)
    assert W47.end(TZ) - W47.start(TZ) == timedelta(days=7)
    assert str(Week.parse("2026-w01")) == "2026-W01"
    with pytest.raises(ValueError):
        Week.parse("2025-W53")  # 2025 has 52 ISO weeks (2026 has 53)


# A 举报 filed in W47, with everything that could identify its writer or its content.
REPORT_WORDS = ("实名举报城西司法所副所长范振东", "检举人欧阳秀兰", "15967438821",
                "320682199208165427", "wx_oyxl1992", "迎春路88号", "请对我的身份保密")


async def test_reports_are_counted_never_quoted(db: Db) -> None:
    for category, confidence in (("1", 0.99), ("3", 0.95)):  # the top measure, most confident
        await db.add(local(18, 9), category, measure="1.2" if category == "1" else None,
                     confidence=confidence, kind="report", restricted=True, from_name="欧阳秀兰",
                     subject="实名举报城西司法所副所长范振东",
                     text="检举人欧阳秀兰，电话15967438821，身份证320682199208165427，"
                          "微信号 wx_oyxl1992，住迎春路88号。范振东收受当事人财物，"
                          "请对我的身份保密。")
    built = await build_w47(db)
    f = built.figures
    assert f.total == 13  # counted like any letter
    assert f.reports == 2 and dict(f.reports_by_category) == {
        next(c.short for c in f.categories if c.id == cid): 1 for cid in ("1", "3")}
    assert "其中举报 2 件" in built.text and "其中举报 2 件" in built.html
    [msg_out] = built.messages(["leader@example.gov.cn"], "ntzfwjgdw@163.com", "x",
                               secret=b"k", id_domain="ours.example.gov.cn")
    msg = email.message_from_bytes(msg_out.data, policy=policy.default)
    parts = [p.get_content() for p in msg.walk() if not p.is_multipart()]
    [xlsx] = [p for p in parts if isinstance(p, bytes) and p.startswith(b"PK")]
    wb = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    cells = " ".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                     for c in row if c is not None)
    assert cells.count("（举报：内容仅主管、管理员可在管理后台查看）") == 4  # subject and text, ×2
    everything = " ".join([built.text, built.html, built.console_html, str(f.as_dict()), cells,
                           *(p for p in parts if isinstance(p, str))])
    for word in REPORT_WORDS:
        assert word not in everything, word


async def test_xlsx_times_are_whole_seconds_in_local_time(db_url: str) -> None:
    d = Db(db_url)
    try:
        await d.add(datetime(2026, 11, 18, 1, 2, 3, 456789, tzinfo=UTC), "1")
        built = await build_w47(d)
    finally:
        await d.engine.dispose()
    [_header, row] = xlsx_rows(built.xlsx)
    assert row[1] == datetime(2026, 11, 18, 9, 2, 3)  # Asia/Shanghai, no fraction of a second


async def test_channel_and_status_read_as_in_the_console(db: Db) -> None:
    from bot.web.console import present

    built = await build_w47(db)
    names = {c: name for c, name, _n in built.figures.channels}
    assert names == {c: present.CHANNEL[c] for c in ("web", "email", "phone")}
    assert f"{present.CHANNEL['web']}：8 件" in built.text
    rows = xlsx_rows(built.xlsx)[1:]
    assert {r[2] for r in rows} <= set(present.CHANNEL.values())
    assert "转办" in {r[5] for r in rows}  # the forwarded case, named as the console names it
    assert {r[5] for r in rows} <= set(present.STATUS.values())
