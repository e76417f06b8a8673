"""Prometheus metrics of one service instance (prometheus-client).

Counters are bumped where things happen; queue sizes (outbox by state, intake by state) are read
from the database at scrape time, so every instance reports the shared truth.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.intake = Counter("feedback_intake_total", "Inputs filed, by channel",
                              ["channel"], registry=self.registry)
        self.errors = Counter("feedback_errors_total", "Errors, by where they happened",
                              ["where"], registry=self.registry)
        self.outbox = Gauge("feedback_outbox_messages", "Outbox rows by state", ["state"],
                            registry=self.registry)
        self.raw = Gauge("feedback_raw_intake_rows", "Raw intake rows by state", ["state"],
                         registry=self.registry)
