"""CLI commands for the classifier: classify, classify-eval, train, taxonomy show.

Only the argument parsers live here; the commands are in ``classify_run`` and are imported when
one of them runs, so that every other ``feedback-bot`` command starts without loading
scikit-learn and the segmenter (about two seconds).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        module = importlib.import_module("bot.commands.classify_run")
        return int(getattr(module, name)(args))

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add classify, classify-eval, train and taxonomy to the ``feedback-bot`` subparsers."""
    p = sub.add_parser("classify", help="给 stdin 的 JSON 行分类，结果逐行写到 stdout")
    p.add_argument("--explain", action="store_true", help="附加 needs_review、紧急原因、中文解释和模型版本")
    p.set_defaults(func=_lazy("cmd_classify"))

    p = sub.add_parser("classify-eval", help="在已标注数据上评估分类器")
    p.add_argument("file", type=Path, help="与 feedback_dev.jsonl 同格式的 JSONL")
    p.add_argument("--cv", type=int, metavar="K", help="K 折交叉验证（被评的条目不参与训练）")
    p.add_argument(
        "--no-dev", action="store_true", help="训练时不用开发集（只用整改报告和自建语料）"
    )
    p.add_argument(
        "--taxonomy-only", action="store_true", help="只用整改报告训练，不用任何标注数据"
    )
    p.add_argument("--json", action="store_true", help="输出一行 JSON 摘要")
    p.set_defaults(func=_lazy("cmd_classify_eval"))

    p = sub.add_parser("train", help="重新训练分类模型")
    p.set_defaults(func=_lazy("cmd_train"))

    p = sub.add_parser("taxonomy", help="整改报告解析出的类别与措施")
    tsub = p.add_subparsers(dest="taxonomy_cmd", required=True)
    show = tsub.add_parser("show", help="打印解析出的类别树")
    show.add_argument("file", type=Path, nargs="?",
                      help="报告文本（默认：配置的 [report] path，未配置时为项目自带的报告）")
    show.add_argument("--json", action="store_true", help="以 JSON 输出")
    # Also after "show" (a nested subcommand does not inherit the common options); SUPPRESS,
    # so that it does not overwrite a --config given earlier on the line.
    show.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                      help="TOML 配置文件：显示其 [report] path 所配置报告的类别")
    show.set_defaults(func=_lazy("cmd_taxonomy_show"))
