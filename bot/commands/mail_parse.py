"""CLI command ``feedback-bot parse-eml FILE``: show how the intake would read one raw message.

Runs the first two pipeline steps (``handlers.parse`` and ``handlers.loop_guard``) on a saved
.eml file and prints one JSON object (schema: shared/data/emails/README.md). Staff and developers
use it to check a message a citizen says was misread. ``register(sub)`` adds the subcommand to the
lead's parser, which supplies ``--config`` for every subcommand; it is not needed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from handlers.loop_guard import machine_kind
from handlers.parse import parse_message, to_json
from handlers.step import LoopPolicy


def run(args: argparse.Namespace) -> int:
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"无法读取文件 {args.file}：{exc.strerror}", file=sys.stderr)
        return 2
    parsed = parse_message(raw)
    auto, _reason = machine_kind(parsed, LoopPolicy())
    out = json.dumps(to_json(parsed, auto), ensure_ascii=False)
    # Write UTF-8 bytes whatever the terminal's locale says: the output is for machines too.
    sys.stdout.buffer.write(out.encode("utf-8", "replace") + b"\n")
    sys.stdout.flush()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``parse-eml FILE`` to argparse's subparsers object."""
    parser = sub.add_parser("parse-eml", help="解析一封 .eml 邮件并输出 JSON")
    parser.add_argument("file", metavar="FILE", help="原始邮件文件（.eml）")
    parser.set_defaults(func=run)
