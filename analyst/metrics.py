"""Prometheus metrics of the analyst, with prometheus_client: every request counted and timed by endpoint,
and the registry's jobs (by state) and events (by kind) counted in the database at each scrape.

Under gunicorn the client runs in multiprocess mode, as the collectors' (collector/metrics.py):
`pullprint analyst` gives the workers an empty PROMETHEUS_MULTIPROC_DIR (analyst/cli.py), and a
scrape of any worker sums them all. The database counts are the same whichever analyst answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("pullprint_analyst_requests", "HTTP requests answered, by method, endpoint and status.",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("pullprint_analyst_request_seconds", "HTTP requests, from the request to the answer, by "
                    "method and endpoint (a collector's login asks jobs.user_jobs and users.auth).",
                    ["method", "endpoint"], buckets=LATENCY_BUCKETS)


def init_app(app: Flask) -> None:
    """Count and time every request the app answers."""

    @app.before_request
    def start_timer() -> None:
        g.pullprint_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        REQUESTS.labels(method=request.method, endpoint=endpoint, status=str(response.status_code)).inc()
        started = g.pop("pullprint_started", None)
        if started is not None:
            LATENCY.labels(method=request.method, endpoint=endpoint).observe(time.perf_counter() - started)
        return response


class _Registry(Collector):
    def __init__(self, jobs_by_state: Mapping[str, int], events_by_kind: Mapping[str, int]) -> None:
        self.jobs_by_state, self.events_by_kind = jobs_by_state, events_by_kind

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily("pullprint_analyst_jobs", "Jobs in the registry by state.", labels=["state"])
        for state, n in sorted(self.jobs_by_state.items()):
            jobs.add_metric([state], float(n))
        yield jobs
        events = CounterMetricFamily("pullprint_analyst_events", "Events in the log by kind.", labels=["kind"])
        for kind, n in sorted(self.events_by_kind.items()):
            events.add_metric([kind], float(n))
        yield events


def render(jobs_by_state: Mapping[str, int], events_by_kind: Mapping[str, int]) -> str:
    """The /metrics page: the database's counts, then every worker's requests."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    database = CollectorRegistry()
    database.register(_Registry(jobs_by_state, events_by_kind))
    return (generate_latest(database) + generate_latest(registry)).decode()
