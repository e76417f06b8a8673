"""Operational endpoints: /healthz for load balancers and people, /metrics for Prometheus."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.web.keys import RUNTIME
from storage import intake as raw_intake
from storage import outbox


async def healthz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    body: dict[str, object] = {"status": "ok"}
    try:
        async with rt.sessions() as session:
            body["outbox"] = await outbox.counts_by_state(session)
            body["intake"] = await raw_intake.counts_by_state(session)
        body["database"] = "ok"
    except Exception as exc:  # the report itself must not fail
        body["database"] = f"error: {exc.__class__.__name__}"
        body["status"] = "degraded"
    body["workers"] = {name: w.as_dict() for name, w in rt.workers.items()}
    if any(w.state == "error" for w in rt.workers.values()):
        body["status"] = "degraded"
    status = 200 if body["database"] == "ok" else 503
    return web.json_response(body, status=status)


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    async with rt.sessions() as session:
        for state, n in (await outbox.counts_by_state(session)).items():
            rt.metrics.outbox.labels(state=state).set(n)
        for state, n in (await raw_intake.counts_by_state(session)).items():
            rt.metrics.raw.labels(state=state).set(n)
    resp = web.Response(body=generate_latest(rt.metrics.registry))
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp
