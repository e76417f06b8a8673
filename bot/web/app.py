"""The web application factory: citizen pages, health and metrics (the console mounts here too)."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import parts
from bot.runtime import TEMPLATES, Runtime, identity
from bot.web import form, form_writer, health
from bot.web.keys import RUNTIME
from bot.web.middlewares import errors, security_headers

# Parts that add their own routes (and middlewares) through ``setup(app)``.
OPTIONAL_PARTS = ("bot.web.status", "bot.web.console", "bot.web.replies")


def make_app(rt: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[security_headers, errors],
        client_max_size=rt.settings.web.max_body_bytes,
    )
    app[RUNTIME] = rt
    app[form_writer.WRITER] = form_writer.FormWriter(rt)
    app[form.FORM_PAGES] = form.FormPages()
    app.cleanup_ctx.append(form_writer.running)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        # Templates ship with the code and change only with a deploy (a restart): no stat() of
        # the template file on every page, which Jinja's default makes to notice edits.
        auto_reload=False,
    )
    aiohttp_jinja2.get_env(app).globals.update(identity(rt.settings))
    app.router.add_get("/", form.show_form)
    app.router.add_get("/feedback", form.show_form)
    app.router.add_post("/", form.submit)
    app.router.add_post("/feedback", form.submit)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_static("/static", TEMPLATES / "static", append_version=True)
    for module in parts.present(OPTIONAL_PARTS):
        module.setup(app)
    return app
