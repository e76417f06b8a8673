"""The staff review console: sign-in, the queue, one submission and its actions, data entry
for phone calls and letters, export, and a read-only JSON API.

``bot.web.app`` calls :func:`setup`, which adds the session and guard middlewares (every
``/console/`` and ``/api/v1/`` route is behind them) and each part's routes.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot.web.console import (
    actions,
    api,
    audit,
    auth,
    digests,
    entry,
    export,
    intake_problems,
    mail,
    present,
    queue,
    submission,
    users,
)


def setup(app: web.Application) -> None:
    auth.setup(app)
    app[queue.COUNTS_CACHE] = {}
    app.router.add_get("/console", queue.show)
    submission.setup(app)
    actions.setup(app)
    entry.setup(app)
    export.setup(app)
    api.setup(app)
    digests.setup(app)
    audit.setup(app)
    users.setup(app)
    intake_problems.setup(app)
    mail.setup(app)
    env = aiohttp_jinja2.get_env(app)
    env.globals.setdefault("role_names", present.ROLE_NAMES)
    env.globals.setdefault("console_nav", (("/console", "来信列表"), ("/console/new", "录入来信"),
                                          ("/console/digests", "每周简报"),
                                          ("/console/intake", "未能登记"),
                                          ("/console/outbox", "发信队列")))
