"""Pointing the configuration at a new report takes effect on restart (issue #15 item 12).

The service runs with the 2021 report (A), with a model trained for A in its model directory,
and files a letter; it is restarted with a second report of the same shape and other categories
(B, tests/data/reports/second_report.txt) on the same database and var/. A letter filed after
the restart is classified under B by a model of B (the model trained for A is not used, its
category numbers mean A's categories); the old letter keeps the taxonomy version it was
classified under, and the console names its category by A's title, not by whatever B numbers
the same."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from bot.app import start
from bot.workers import digest as digest_worker
from handlers.classify import load_taxonomy, save_model, shipped_classifier
from handlers.digest.figures import collect
from handlers.digest.weeks import Week
from storage import review_list as queue
from testing.smtp import SmtpSink
from tests.bot.console.support import add_user, file_letter, login, page_csrf
from tests.conftest import make_settings

REPORT_B = Path(__file__).resolve().parents[1] / "data" / "reports" / "second_report.txt"
# About A's category 1 (measure 1.10: 诉讼服务中心, “网上办” services, 派出所综合服务窗口).
OLD_LETTER = ("派出所综合服务窗口办户籍要跑好几趟，诉讼服务中心的网上办事平台也经常打不开，"
              "希望把“网上办”公共服务事项范围扩大，便民服务制度落到实处。")
# About B's category 3 (法律援助).
NEW_LETTER = ("我是农民工，老板拖欠工资，去申请法律援助，窗口说要先开经济困难证明，"
              "跑了三趟还没受理。法律援助申请门槛太高了，办理周期也太长。")


async def test_a_new_report_takes_effect_on_restart(db_url: str, tmp_path: Path,
                                                   smtp_sink: SmtpSink) -> None:
    tax_a, tax_b = load_taxonomy(), load_taxonomy(REPORT_B)
    settings_a = make_settings(db_url, tmp_path, smtp_sink)
    model_a = save_model(shipped_classifier(), Path(settings_a.classifier.model_dir))

    service = await start(settings_a)
    try:
        staff = await add_user(service, "zhuguan", "supervisor")
        old_id = await file_letter(service, OLD_LETTER)
        async with service.runtime.sessions() as db:
            old = await queue.get(db, old_id)
        assert old is not None
        assert (old.taxonomy_version, old.model_version) == (tax_a.version, model_a)
        assert old.category in {"1", "2", "3"}  # a number that B uses for something else
        old_title = tax_a.category(old.category).title
    finally:
        await service.stop()

    service = await start(make_settings(db_url, tmp_path, smtp_sink,
                                        report={"path": str(REPORT_B)}))
    try:
        new_id = await file_letter(service, NEW_LETTER)
        async with service.runtime.sessions() as db:
            old, new = await queue.get(db, old_id), await queue.get(db, new_id)
        assert old is not None and new is not None
        assert (old.taxonomy_version, old.category) == (tax_a.version, old.category)
        assert new.taxonomy_version == tax_b.version
        assert new.model_version != model_a
        assert new.category == "3"

        base = service.base_url
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, base, staff.name)
            async with http.get(f"{base}/console") as resp:
                assert resp.status == 200
                listing = await resp.text()
            async with http.get(f"{base}/console/s/{old_id}") as resp:
                assert resp.status == 200
                letter_page = await resp.text()
        new_name = f"（3）{tax_b.category('3').title}"
        old_name = f"（{old.category}）{old_title}（原整改报告）"
        assert new_name in listing and old_name in listing
        assert f'<dd id="category">{old_name}</dd>' in letter_page
        # The reclassify form preselects none of B's categories for a letter of A ...
        assert '<option value="" selected>' in letter_page

        # ... and a category staff choose now is B's: the letter moves to B's taxonomy.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, base, staff.name)
            token = await page_csrf(http, f"{base}/console/s/{old_id}")
            async with http.post(f"{base}/console/s/{old_id}/classify",
                                 data={"csrf": token, "category": "2", "measure": "2.1",
                                       "kind": "complaint"}) as resp:
                assert resp.status == 200
                shown = f'<dd id="category">（2）{tax_b.category("2").title}</dd>'
                assert shown in await resp.text()
        async with service.runtime.sessions() as db:
            old = await queue.get(db, old_id)
        assert old is not None
        assert (old.category, old.measure, old.taxonomy_version) == ("2", "2.1", tax_b.version)

        # The digest names the week's categories by the configured report.
        settings = service.runtime.settings
        week = Week.of(datetime.now(ZoneInfo(settings.digest.timezone)).date())
        async with service.runtime.sessions() as db:
            figures = await collect(db, week, digest_worker.options(settings))
        assert {(r.id, r.title) for r in figures.categories} >= {
            ("2", tax_b.category("2").title), ("3", tax_b.category("3").title)}
        archive = Path(service.runtime.settings.var_dir) / "taxonomies"
        assert {p.stem for p in archive.glob("t-*.json")} == {tax_a.version, tax_b.version}
    finally:
        await service.stop()
