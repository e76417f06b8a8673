"""Operational endpoints: /healthz for load balancers and people, /metrics for Prometheus.

/healthz says "degraded", with its reasons, whenever something needs a person even though the
web pages work: a worker in error (the SMTP relay unreachable), letters quarantined in intake,
mail failed for good, the provider throttling the outbox. It answers 503 only when the database
cannot be read (the pages cannot work either).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.web.keys import RUNTIME
from bot.workers import outbox as outbox_worker
from storage import outbox, raw_intake


async def healthz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    body: dict[str, object] = {"status": "ok"}
    reasons: list[str] = []
    try:
        async with rt.sessions() as session:
            body["outbox"] = mail = await outbox.counts_by_state(session)
            body["intake"] = intake = await raw_intake.counts_by_state(session)
            hold = await outbox_worker.hold(rt, session)
        body["database"] = "ok"
    except Exception as exc:  # the report itself must not fail
        body["database"] = f"error: {exc.__class__.__name__}"
        reasons.append("database unavailable")
    else:
        body["problems"] = {"intake_held": intake.get("held", 0),
                            "intake_quarantined": intake.get("quarantined", 0),
                            "mail_failed": mail.get("failed", 0)}
        if intake.get("quarantined"):
            reasons.append(f"{intake['quarantined']} letter(s) quarantined in intake "
                           "(/console/intake)")
        if mail.get("failed"):
            reasons.append(f"{mail['failed']} message(s) failed for good (/console/outbox)")
        body["outbox_hold"] = None if hold.until is None else {
            "until": hold.until.isoformat(timespec="seconds"),
            "reason": hold.paused or "sending cap reached", "provider_pause": bool(hold.paused)}
        if hold.paused and hold.until is not None:  # a provider pause always has an end
            reasons.append(f"SMTP provider throttling: outbox paused until "
                           f"{hold.until.isoformat(timespec='seconds')} ({hold.paused})")
    body["workers"] = {name: w.as_dict() for name, w in rt.workers.items()}
    reasons += [f"{name}: {w.last_error}" for name, w in rt.workers.items() if w.state == "error"]
    if reasons:
        body["status"], body["reasons"] = "degraded", reasons
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
