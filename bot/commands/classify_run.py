"""The classifier commands (classify, classify-eval, train, taxonomy show); parsers in classify_cmds.

``register(sub)`` adds the subcommands to the lead's ``feedback-bot`` parser, which supplies
``args.config`` for every subcommand. Without ``--config`` the commands use the model that
ships with the project; with it, the deployment's model directory
(``settings.classifier.model_dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from handlers.classify import (
    ClassifierHolder,
    TaxonomyError,
    load_taxonomy,
    save_model,
    shipped_classifier,
    train,
)
from handlers.classify.evaluate import DEFAULT_REVIEW, cross_validate, predict, score
from handlers.classify.model import Classification, Classifier
from handlers.classify.restrict import DEFAULT_THRESHOLD as DEFAULT_RESTRICT_THRESHOLD
from handlers.classify.scorer import Scorer
from handlers.classify.store import build_shipped, examples_for, shipped_examples
from handlers.urgent import verdict as urgent_verdict

if TYPE_CHECKING:
    from bot.config import Settings

BATCH = 256  # lines classified together: vectorised prediction, bounded memory


def _settings(args: argparse.Namespace) -> Settings:
    from bot.config import load_settings  # lazy: the taxonomy commands need no settings

    return load_settings(args.config)


def _classifier(args: argparse.Namespace) -> tuple[Classifier | Scorer, float, float]:
    """The model, the review threshold and the restrict threshold of the deployment (of the
    defaults without ``--config``)."""
    if getattr(args, "config", None) is None:
        return shipped_classifier(), DEFAULT_REVIEW, DEFAULT_RESTRICT_THRESHOLD
    settings = _settings(args)
    holder = ClassifierHolder(Path(settings.classifier.model_dir), report=settings.report_file)
    c = settings.classifier
    return holder.get(), c.review_threshold, c.restrict_threshold


# --- classify -------------------------------------------------------------------------------


def _parse_line(line: str) -> tuple[dict | None, dict | None]:
    """(item, None) for a usable line, (None, error record) otherwise."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, {"error": f"invalid JSON: {exc.msg} at column {exc.colno}"}
    if not isinstance(obj, dict):
        return None, {"error": "expected a JSON object"}
    err: dict = {"id": obj["id"]} if "id" in obj else {}
    subject, body = obj.get("subject", ""), obj.get("body")
    if not isinstance(body, str):
        return None, {**err, "error": "missing or non-string 'body'"}
    if subject is not None and not isinstance(subject, str):
        return None, {**err, "error": "non-string 'subject'"}
    return {"id": obj.get("id"), "subject": subject or "", "body": body}, None


def _record(item_id: object, c: Classification, explain: bool, threshold: float,
            restrict_threshold: float) -> dict:
    restriction = c.restriction(restrict_threshold)  # the service's own decision
    out = {
        "id": item_id,
        "category": c.category,
        "measure": c.measure,
        "kind": c.kind,
        "confidence": c.confidence,
        "top": [{"category": cat, "score": s} for cat, s in c.top],
        "restricted": restriction.restricted,
        # handlers/urgent.verdict: the service's own reading of the classifier's urgency.
        "urgent": urgent_verdict(c)[0],
    }
    if explain:
        out.update(
            restricted_reason=restriction.reason or None,
            urgent_reasons=urgent_verdict(c)[1],
            urgent_score=c.urgent_score,
            urgent_reason=c.urgent_reason() or None,
            report_probability=c.report_prob,
            needs_review=c.needs_review(threshold),
            explanation=c.explanation,
            model_version=c.model_version,
            taxonomy_version=c.taxonomy_version,
        )
    return out


def _batches(stream: TextIO) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in stream:
        if line.strip():
            batch.append(line)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def run_classify(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    clf, threshold, restrict_threshold = _classifier(args)
    for lines in _batches(stdin):
        parsed = [_parse_line(line) for line in lines]
        good = [it for it, _ in parsed if it is not None]
        results = iter(clf.classify_many([(it["subject"], it["body"]) for it in good]))
        for item, error in parsed:
            rec = (
                error
                if item is None
                else _record(item["id"], next(results), args.explain, threshold,
                             restrict_threshold)
            )
            stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    return run_classify(args, sys.stdin, sys.stdout)


# --- classify-eval --------------------------------------------------------------------------


def _base_examples(args: argparse.Namespace) -> list[dict]:
    if args.taxonomy_only:
        return []
    return shipped_examples(with_dev=not args.no_dev)


def _warn_overlap(items: list[dict]) -> None:
    seen = {(ex.get("subject") or "", ex["body"]) for ex in shipped_examples()}
    n = sum((it.get("subject") or "", it.get("body")) in seen for it in items)
    if n:
        print(
            f"注意：{n} 条评估数据也是发布模型的训练数据，分数偏高；请用 --cv K 或 --no-dev",
            file=sys.stderr,
        )


class BadLabels(ValueError):
    """A labelled file classify-eval cannot score; the message (Chinese) says what to fix."""


def read_labelled(path: Path, labels: list[str]) -> list[dict]:
    """The labelled letters of ``path``, each checked for what scoring needs: a text, a
    category the report knows and a kind. A file of the wrong shape is the user's mistake, so
    it gets a line number and what is missing, not a traceback."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadLabels(f"无法读取 {path}：{exc}") from exc
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise BadLabels(f"第 {n} 行不是 JSON 对象") from None
        if not isinstance(item, dict):
            raise BadLabels(f"第 {n} 行不是 JSON 对象")
        missing = [k for k in ("category", "kind") if not item.get(k)]
        if not (item.get("body") or item.get("subject")):
            missing.insert(0, "body")
        if missing:
            raise BadLabels(f"第 {n} 行缺少 {'、'.join(missing)}（每行需要 body、category、kind，"
                            "格式同 feedback_dev.jsonl）")
        if item["category"] not in labels:
            raise BadLabels(f"第 {n} 行的 category {item['category']!r} 不在整改报告的类别中"
                            f"（可用：{'、'.join(labels)}）")
        items.append(item)
    if not items:
        raise BadLabels(f"{path} 中没有标注数据")
    return items


def cmd_classify_eval(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy()
    try:
        items = read_labelled(args.file, taxonomy.labels)
    except BadLabels as exc:
        print(f"classify-eval：{exc}", file=sys.stderr)
        return 2
    restrict_threshold, review_threshold = DEFAULT_RESTRICT_THRESHOLD, DEFAULT_REVIEW
    if args.cv:
        preds = cross_validate(
            items,
            _base_examples(args),
            taxonomy,
            args.cv,
            on_fold=lambda f: print(f"fold {f + 1}/{args.cv} done", file=sys.stderr),
        )
        mode = f"{args.cv}-fold CV"
    elif args.taxonomy_only or args.no_dev:
        clf: Classifier | Scorer = train(_base_examples(args), taxonomy, progress=True)
        preds, mode = predict(clf, items), clf.version
    else:
        clf, review_threshold, restrict_threshold = _classifier(args)
        preds, mode = predict(clf, items), clf.version
        if args.config is None:
            _warn_overlap(items)
    scores = score(items, preds, taxonomy.labels, restrict_threshold=restrict_threshold,
                   review_threshold=review_threshold)
    if args.json:
        print(json.dumps({"mode": mode, **scores.summary()}, ensure_ascii=False))
    else:
        print(f"模型：{mode}  数据：{args.file}")
        print(scores.render())
    return 0


# --- train ----------------------------------------------------------------------------------


def _staff_examples(settings: Settings) -> list[dict]:
    try:
        from storage.labels import confirmed_examples
    except ImportError:
        print("storage.labels 不可用，跳过工作人员确认的标注", file=sys.stderr)
        return []
    return list(confirmed_examples(settings.database.url))


def cmd_train(args: argparse.Namespace) -> int:
    if args.config is None:
        clf = build_shipped(progress=True)
        print(f"已重建随项目发布的模型 {clf.version}")
        return 0
    settings = _settings(args)
    staff = _staff_examples(settings)
    taxonomy = load_taxonomy(settings.report_file)  # the configured report's categories
    clf = train(examples_for(taxonomy, shipped_examples() + staff), taxonomy, progress=True)
    version = save_model(clf, Path(settings.classifier.model_dir))
    print(
        f"已训练模型 {version}（含工作人员确认 {len(staff)} 条），保存在 {settings.classifier.model_dir}"
    )
    return 0


# --- taxonomy -------------------------------------------------------------------------------


def cmd_taxonomy_show(args: argparse.Namespace) -> int:
    """The taxonomy of FILE, else of the configured report (``[report] path``; the copy shipped
    with the project when none is configured)."""
    path = args.file if args.file is not None else _settings(args).report_file
    try:
        taxonomy = load_taxonomy(path)
    except (OSError, UnicodeDecodeError, TaxonomyError) as exc:
        print(f"无法解析 {path}：{exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(taxonomy.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(taxonomy.render())
    return 0
