"""``[report]`` and ``[commission]`` in the configuration, as an operator meets them: the
``feedback-bot`` command in a process, with a TOML file (issue #15 item 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from handlers.classify import load_taxonomy
from tests.bot.test_cli import run_cli

REPORT_B = Path(__file__).resolve().parents[1] / "data" / "reports" / "second_report.txt"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feedback-bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_refuses_a_report_that_yields_no_categories(tmp_path: Path) -> None:
    notice = tmp_path / "notice.txt"
    notice.write_text("关于开展意见征集的公告\n一、征集内容\n欢迎提出意见。\n", encoding="utf-8")
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes(REPORT_B.read_text(encoding="utf-8").encode("gbk"))
    cases = {
        notice: "没有解析出整改类别",
        tmp_path / "missing.txt": "报告文件不存在",
        gbk: "不是 UTF-8",
    }
    for report, message in cases.items():
        config = _config(tmp_path, f'[report]\npath = "{report}"\n')
        out = run_cli("check-config", "--config", str(config), cwd=tmp_path)
        assert out.returncode == 2, out.stdout
        assert "report.path" in out.stderr and message in out.stderr
        assert "Traceback" not in out.stderr
    served = run_cli("serve", "--config", str(config), cwd=tmp_path)  # refuses to start
    assert served.returncode == 2 and "不是 UTF-8" in served.stderr


def test_check_config_names_the_configured_report(tmp_path: Path) -> None:
    config = _config(tmp_path, f'[report]\npath = "{REPORT_B}"\n')
    out = run_cli("check-config", "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"3 categories, 8 measures, taxonomy {load_taxonomy(REPORT_B).version}" in out.stdout


def test_taxonomy_show_shows_the_configured_report(tmp_path: Path) -> None:
    config = _config(tmp_path, f'[report]\npath = "{REPORT_B}"\n')
    out = run_cli("taxonomy", "show", "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"taxonomy {load_taxonomy(REPORT_B).version}: 3 类, 8 项措施")
    assert "3  法律援助申请门槛高、办理周期长" in out.stdout
    out = run_cli("taxonomy", "show", "--json", cwd=tmp_path / "..")  # no configuration
    assert len(json.loads(out.stdout)["categories"]) == 10  # the shipped copy


def test_the_sender_name_follows_the_commission(tmp_path: Path) -> None:
    config = _config(tmp_path, '[commission]\nname = "海门区委政法委"\n')
    assert load_settings(config).smtp.from_name == "海门区委政法委群众来信"
    config = _config(tmp_path, '[commission]\nname = "海门区委政法委"\n'
                               '[smtp]\nfrom_name = "海门政法来信"\n')
    assert load_settings(config).smtp.from_name == "海门政法来信"
    assert load_settings(None).smtp.from_name == "南通市委政法委群众来信"


def test_identity_values_that_would_break_a_page_are_refused(tmp_path: Path) -> None:
    for text, key in (('[commission]\nmailbox = "信访 <a@b.cn>"\n', "commission.mailbox"),
                      ('[report]\nurl = "javascript:alert(1)"\n', "report.url")):
        with pytest.raises(ConfigError, match=key):
            load_settings(_config(tmp_path, text))
