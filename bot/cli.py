"""``feedback-bot``: the command line of the service.

Every subcommand takes ``--config FILE`` the same way (default: ./feedback-bot.toml if present,
then the embedded defaults; FEEDBACK_* environment variables override both). Subcommands live in
``bot/commands/``, one module per family, each with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot import logsetup, parts
from bot.config import ConfigError, load_settings

COMMAND_MODULES = (
    "bot.commands.export",
    "bot.commands.mail_parse",
    "bot.commands.mail_ingest",
    "bot.commands.classify_cmds",
    "bot.commands.users",
    "bot.commands.digest",
    "bot.commands.purge",
)


def _serve(args: argparse.Namespace) -> int:
    from bot.app import serve

    settings = load_settings(args.config)
    logsetup.setup(settings.log.level, settings.log.format)
    asyncio.run(serve(settings))
    return 0


def _db(args: argparse.Namespace) -> int:
    # Imported here: the database layer is memory that only this command needs.
    from storage.db import upgrade

    settings = load_settings(args.config)
    upgrade(settings.database.url)
    print("database is up to date")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    print("configuration is valid")
    from handlers.classify.taxonomy import load_taxonomy  # stdlib only, parsed in milliseconds

    tax = load_taxonomy(settings.report_file)
    print(f"report: {settings.report.path or '(the copy shipped with the project)'}: "
          f"{len(tax.categories)} categories, {len(tax.measures)} measures, "
          f"taxonomy {tax.version}")
    return 0


def _config_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--config", type=Path, default=default, metavar="FILE",
                        help="TOML configuration file (default: ./feedback-bot.toml if present)")


def _add_config_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every (nested) subcommand a ``--config`` that never overwrites an earlier one.

    argparse copies a sub-parser's whole namespace, defaults included, over the parent's
    (Python 3.9+), so a ``default=None`` there would erase ``feedback-bot --config F cmd``.
    SUPPRESS adds the attribute only when the option is given; the top-level parser's None
    is the one default.
    """
    for action in parser._actions:  # argparse offers no public walk over sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if "--config" not in child._option_string_actions:
                    _config_option(child, argparse.SUPPRESS)
                _add_config_everywhere(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedback-bot", description=__doc__.splitlines()[0])
    _config_option(parser, None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service").set_defaults(func=_serve)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade",))
    db.set_defaults(func=_db)
    sub.add_parser("check-config", help="validate the configuration").set_defaults(
        func=_check_config)
    for module in parts.present(COMMAND_MODULES):
        module.register(sub)
    _add_config_everywhere(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"feedback-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
