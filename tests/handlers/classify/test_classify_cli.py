"""The classify, classify-eval, train and taxonomy commands, run through argparse."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from bot.commands import classify_cmds, classify_run
from handlers.classify.store import current_version, shipped_examples


def run(argv: list[str], config: Path | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    classify_cmds.register(sub)
    args = parser.parse_args(argv)
    args.config = config
    return args


def classify_lines(lines: list[str], argv: list[str] | None = None) -> list[dict]:
    out = io.StringIO()
    assert (
        classify_run.run_classify(
            run(["classify", *(argv or [])]), io.StringIO("\n".join(lines) + "\n"), out
        )
        == 0
    )
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_classify_keeps_order_and_reports_bad_lines(shipped) -> None:
    lines = [
        json.dumps(
            {"id": "a", "subject": "", "body": "加微信领取免费奖品，点击链接马上到账"},
            ensure_ascii=False,
        ),
        "{not json",
        json.dumps({"id": "c", "subject": "x"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "e", "body": "派出所户籍窗口周末能办身份证吗？"}, ensure_ascii=False),
    ]
    out = classify_lines(lines)
    assert [o.get("id") for o in out] == ["a", None, "c", None, "e"]
    assert out[0]["category"] == "spam"
    assert all("error" in out[i] for i in (1, 2, 3))
    assert set(out[4]) == {"id", "category", "measure", "kind", "confidence", "top",
                           "restricted", "urgent"}
    assert out[4]["urgent"] is False
    assert [t["category"] for t in out[4]["top"]][0] == out[4]["category"]


def test_explain_flag_adds_staff_fields(shipped) -> None:
    out = classify_lines(
        [
            json.dumps(
                {"id": 1, "subject": "", "body": "扫黑除恶以后村霸又回来了"}, ensure_ascii=False
            )
        ],
        ["--explain"],
    )
    assert {"needs_review", "explanation", "model_version", "taxonomy_version"} <= set(out[0])


def test_classify_prints_the_services_restriction_decision(shipped) -> None:
    letters = {
        "plain": "请问派出所户籍窗口周末能办身份证吗？",
        # kind aside, words of a misconduct report restrict it
        "implicit": "窗口那个办事员收了两条烟才给我盖章，不送就一直说材料不齐。",
        "explicit": "实名举报某镇司法所所长在调解中收受当事人红包，请为我保密。",
    }
    lines = [json.dumps({"id": k, "body": v}, ensure_ascii=False) for k, v in letters.items()]
    out = {o["id"]: o for o in classify_lines(lines, ["--explain"])}
    assert [out[k]["restricted"] for k in letters] == [False, True, True]
    assert out["implicit"]["restricted_reason"] and out["plain"]["restricted_reason"] is None
    assert 0 <= out["plain"]["report_probability"] < out["explicit"]["report_probability"] <= 1


def test_classify_with_config_uses_the_deployment_model(tmp_path: Path, small_examples) -> None:
    from handlers.classify import load_taxonomy, save_model, train

    model_dir = tmp_path / "models"
    version = save_model(train(small_examples, load_taxonomy()), model_dir)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[classifier]\nmodel_dir = "{model_dir}"\nreview_threshold = 0.9\n')
    out = io.StringIO()
    args = run(["classify", "--explain"], config=cfg)
    classify_run.run_classify(args, io.StringIO('{"id": 1, "body": "你好"}\n'), out)
    assert json.loads(out.getvalue())["model_version"] == version
    # The deployment's restrict threshold is the one applied: at 0 every letter is restricted.
    cfg.write_text(f'[classifier]\nmodel_dir = "{model_dir}"\nrestrict_threshold = 0.0\n')
    out = io.StringIO()
    classify_run.run_classify(run(["classify"], config=cfg),
                              io.StringIO('{"id": 1, "body": "公交站台的顶棚破了"}\n'), out)
    assert json.loads(out.getvalue())["restricted"] is True


def test_taxonomy_show_prints_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    args = run(["taxonomy", "show"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "1.13" in text and "2.12" in text and "\n10  " in text


def test_taxonomy_show_refuses_a_file_of_the_wrong_shape(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("没有章节的文本", encoding="utf-8")
    args = run(["taxonomy", "show", str(bad)])
    assert args.func(args) == 1
    assert "无法解析" in capsys.readouterr().err


def test_eval_cross_validation_scores_every_item(tmp_path: Path, capsys) -> None:
    corpus = shipped_examples(with_dev=False)
    items = [ex for ex in corpus if ex["category"] == "8"][:12]
    items += [ex for ex in corpus if ex["category"] == "spam"][:12]
    path = tmp_path / "labelled.jsonl"
    path.write_text(
        "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in items), encoding="utf-8"
    )
    args = run(["classify-eval", str(path), "--cv", "3", "--taxonomy-only", "--json"])
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 24 and summary["mode"] == "3-fold CV"
    # Eight labelled letters a fold teach little: the kind model's report probability sits
    # near the restrict threshold for every letter, and a letter that may be a 举报 is never
    # spam, and an English one is spam only at 0.95 (decide.py), so much spam stays unrecalled
    # here (9 of 12). What must hold: the genuine letters are filed, and none of them as spam.
    assert summary["top1"] >= 0.6
    assert summary["spam_precision"] == 1.0


def test_train_with_config_writes_a_current_model(tmp_path: Path, capsys) -> None:
    from storage.db import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/feedback.db"
    upgrade(url)  # a real, empty deployment database: no staff labels yet
    model_dir = tmp_path / "models"
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[classifier]\nmodel_dir = "{model_dir}"\n[database]\nurl = "{url}"\n')
    args = run(["train"], config=cfg)
    assert args.func(args) == 0
    assert current_version(model_dir) is not None
    assert current_version(model_dir) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([{"id": "k1", "body": "请问执行款什么时候到账？", "kind": "inquiry"}], "第 1 行缺少 category"),
        (["", "{不是 JSON"], "第 2 行不是 JSON 对象"),
        ([{"body": "谢谢民警", "category": "十一", "kind": "praise"}], "不在整改报告的类别中"),
        ([], "没有标注数据"),
    ],
)
def test_eval_says_which_line_of_a_bad_file_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list, says: str
) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False))
                            + "\n" for x in lines), encoding="utf-8")
    args = run(["classify-eval", str(path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
