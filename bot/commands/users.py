"""``feedback-bot user …``: staff accounts of the console.

    user add NAME --role reviewer|supervisor|admin [--password-stdin]
    user list
    user disable NAME
    user enable NAME
    user role NAME reviewer|supervisor|admin
    user passwd NAME [--password-stdin]
    user token NAME          (prints a new API token once; only its hash is kept)
    user email NAME ADDRESS  (where the morning reminder of due cases goes; "" : none)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import load_settings
from storage import users
from storage.db import make_engine, sessionmaker, upgrade


def register(sub: Any) -> None:
    p = sub.add_parser("user", help="staff accounts of the console")
    actions = p.add_subparsers(dest="user_action", required=True)
    add = actions.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", choices=users.ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of prompting")
    actions.add_parser("list", help="list accounts")
    dis = actions.add_parser("disable", help="disable an account (ends its sessions and token)")
    dis.add_argument("name")
    ena = actions.add_parser("enable", help="enable a disabled account (it needs a new token)")
    ena.add_argument("name")
    role = actions.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=users.ROLES)
    pw = actions.add_parser("passwd", help="set a new password (ends the account's sessions)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    tok = actions.add_parser("token", help="issue a new API token (replaces the old one)")
    tok.add_argument("name")
    mail = actions.add_parser("email", help="set where the account's morning reminder goes")
    mail.add_argument("name")
    mail.add_argument("email", help='an e-mail address; "" for none')
    for action in (add, dis, ena, role, pw, tok, mail, actions.choices["list"]):
        # `user add NAME --config F` as well as `user --config F add NAME`; SUPPRESS keeps an
        # absent option from overwriting the value given before the action.
        action.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                            help="TOML configuration file")
    p.set_defaults(func=run)


def _password(args: argparse.Namespace) -> str:
    """The new password, checked by the same rules as the console's account page."""
    again = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("密码 / password: ")
        again = getpass.getpass("再输入一次 / again: ")
    users.check_password(password, again)
    return password


async def _with_session(url: str, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    engine = make_engine(url)
    try:
        async with sessionmaker(engine).begin() as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _list(session: AsyncSession) -> None:
    for u in await users.list_all(session):
        state = "disabled" if u.disabled else "active"
        token = "token" if u.api_token_hash else "-"
        print(f"{u.name:<24} {u.role:<11} {state:<9} {token:<6} {u.created_at:%Y-%m-%d}")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    url = settings.database.url
    upgrade(url)
    action = args.user_action
    try:
        if action == "add":
            password = _password(args)
            asyncio.run(_with_session(url, lambda s: users.add(s, args.name, args.role, password)))
            print(f"user {args.name} ({args.role}) added")
        elif action == "list":
            asyncio.run(_with_session(url, _list))
        elif action == "disable":
            asyncio.run(_with_session(url, lambda s: users.set_disabled(s, args.name)))
            print(f"user {args.name} disabled")
        elif action == "enable":
            asyncio.run(_with_session(url, lambda s: users.set_disabled(s, args.name, False)))
            print(f"user {args.name} enabled")
        elif action == "role":
            asyncio.run(_with_session(url, lambda s: users.set_role(s, args.name, args.role)))
            print(f"user {args.name} is now {args.role}")
        elif action == "passwd":
            password = _password(args)
            asyncio.run(_with_session(url, lambda s: users.set_password(s, args.name, password)))
            print(f"password of {args.name} changed")
        elif action == "token":
            token = asyncio.run(_with_session(url, lambda s: users.issue_token(s, args.name)))
            print(token)
            print("(shown once; keep it safe — a new `user token` replaces it)", file=sys.stderr)
        elif action == "email":
            asyncio.run(_with_session(url, lambda s: users.set_email(s, args.name, args.email)))
            print(f"reminders of {args.name} go to {args.email or '(nobody)'}")
    except users.UserError as exc:
        print(f"feedback-bot user: {exc}", file=sys.stderr)
        return 1
    return 0
