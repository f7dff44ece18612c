"""Prometheus metrics of a collector, with prometheus_client: counters, latency histograms, live gauges.

Under gunicorn the client runs in multiprocess mode: `pullprint collector` points
PROMETHEUS_MULTIPROC_DIR at an empty folder of the node's (collector/cli.py), every worker writes
its figures there, and a scrape of any worker sums them all (nodeserver/gunicorn_conf.py drops a
dead worker's live files). Without it (a test's app in one process) the default registry serves.
Gauges that describe the node now (spool, journal, replication) are read when scraped.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # no *_created series beside each counter

COUNTER_HELP = {
    "jobs_received": "Jobs stored and acknowledged (201).",
    "jobs_repeated": "Submissions answered with an existing job (the same Idempotency-Key).",
    "jobs_refused_too_few_copies": "Submissions refused because the copies a job needs could not be kept.",
    "logins": "Terminal logins that opened a session.",
    "logins_failed": "Terminal logins refused: wrong credentials, throttled or locked out.",
    "jobs_printed": "Jobs released and printed through this collector.",
}
_COUNTERS = {name: Counter(f"pullprint_collector_{name}", text, ["collector"]) for name, text in COUNTER_HELP.items()}

# From a fast login on a LAN (~10 ms) to a release that waits for a busy printer (release_wait_seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_LATENCY = {
    "api.submit_job": Histogram("pullprint_collector_submit_seconds", "Job submissions, from the request to the "
                                "answer (the whole upload, fsync, replica and registration).",
                                ["collector", "status"], buckets=LATENCY_BUCKETS),
    "api.create_session": Histogram("pullprint_collector_login_seconds", "Terminal logins, from the request to the "
                                    "answer with the user's jobs.", ["collector", "status"], buckets=LATENCY_BUCKETS),
    "api.release": Histogram("pullprint_collector_release_seconds", "Release requests, from the request to the "
                             "answer (at most release_wait_seconds; later jobs are queued).",
                             ["collector", "status"], buckets=LATENCY_BUCKETS),
}

# Queue depth per printer: what this collector's releases have for a printer and not yet sent (waiting
# behind other jobs or for the printer's lock, or being sent); summed over the node's live workers.
_PRINTER_QUEUE = Gauge("pullprint_collector_printer_queue_jobs", "Jobs this collector is releasing to each printer "
                       "now and has not finished sending: waiting behind others, for the printer, or being sent.",
                       ["collector", "printer"], multiprocess_mode="livesum")

GAUGE_HELP = {
    "spool_jobs": "Job copies in this collector's spool.",
    "journal_entries": "Changes journalled for the analyst, not yet replayed.",
    "under_replicated_jobs": "Held jobs with fewer live copies than replicas, counted on the collector that "
                             "copies them again (the sum over collectors is the cluster's count).",
    "replication_census_age_seconds": "Seconds since under_replicated_jobs was counted (every 5 s, or "
                                      "when the spool or membership changed).",
    "replication_lag_seconds": "Replication lag: how long the longest-waiting of this collector's under-replicated "
                               "jobs has been short of a copy (0: none is).",
}


def count(collector_id: str, name: str, amount: int = 1) -> None:
    """Add `amount` to the counter `name` (COUNTER_HELP), in this process (no call to anything)."""
    counter = _COUNTERS.get(name)
    if counter is not None and amount:
        counter.labels(collector=collector_id).inc(amount)


def printer_queue(collector_id: str, printer_id: str, change: int) -> None:
    """`change` jobs more (or fewer) on their way to `printer_id` from this collector."""
    _PRINTER_QUEUE.labels(collector=collector_id, printer=printer_id).inc(change)


def init_app(app: Flask, collector_id: str, spool_dir: str = "") -> None:
    """Time the submit, login and release views (histograms above), show every counter from 0, and
    read the SNMP poller's last cycle from the node's status folder (`spool_dir`) at each scrape."""
    for counter in _COUNTERS.values():
        counter.labels(collector=collector_id)
    app.config["PULLPRINT_METRICS_SPOOL_DIR"] = spool_dir

    @app.before_request
    def start_timer() -> None:
        if request.endpoint in _LATENCY:
            g.pullprint_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("pullprint_started", None)
        if started is not None and request.endpoint in _LATENCY:
            _LATENCY[request.endpoint].labels(collector=collector_id, status=str(response.status_code)).observe(
                time.perf_counter() - started)
        return response


POLLER_HELP = {
    "snmp_cycle_seconds": "How long this collector's last SNMP poll cycle took (its share of the site's printers).",
    "snmp_cycle_age_seconds": "Seconds since this collector's last SNMP poll cycle ended.",
    "snmp_printers_polled": "Printers this collector polled in its last cycle.",
    "snmp_printers_unreachable": "Printers that did not answer this collector's last poll.",
}
PRINTER_STATE_HELP = ("The state of each printer this collector polled in its last cycle (1 for the state it is "
                      "in): ok, warning, error, unreachable. Each printer is polled by one collector of its site.")


class _Live(Collector):
    def __init__(self, collector_id: str, gauges: dict[str, float], cycle: dict[str, Any] | None) -> None:
        self.collector_id, self.gauges, self.cycle = collector_id, gauges, cycle

    def collect(self) -> Any:
        for name, value in sorted(self.gauges.items()):
            family = GaugeMetricFamily(f"pullprint_collector_{name}", GAUGE_HELP.get(name, name), labels=["collector"])
            family.add_metric([self.collector_id], value)
            yield family
        if not self.cycle:
            return
        values = {"snmp_cycle_seconds": self.cycle.get("seconds"),
                  "snmp_cycle_age_seconds": max(0.0, time.time() - float(self.cycle.get("at") or 0)),
                  "snmp_printers_polled": self.cycle.get("polled"),
                  "snmp_printers_unreachable": self.cycle.get("unreachable")}
        for name, figure in values.items():
            if isinstance(figure, int | float):
                family = GaugeMetricFamily(f"pullprint_collector_{name}", POLLER_HELP[name], labels=["collector"])
                family.add_metric([self.collector_id], float(figure))
                yield family
        states = GaugeMetricFamily("pullprint_printer_state", PRINTER_STATE_HELP,
                                   labels=["collector", "printer", "state"])
        for printer, state in sorted((self.cycle.get("states") or {}).items()):
            for candidate in ("ok", "warning", "error", "unreachable"):
                states.add_metric([self.collector_id, str(printer), candidate], 1.0 if state == candidate else 0.0)
        yield states


def render(redis: Any, collector_id: str, gauges: dict[str, float]) -> str:
    """The /metrics page: every worker's counters and histograms, then the live gauges."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    from collector.status import last_poll_cycle

    spool_dir = current_app.config.get("PULLPRINT_METRICS_SPOOL_DIR", "") if has_app_context() else ""
    live = CollectorRegistry()
    live.register(_Live(collector_id, gauges, last_poll_cycle(spool_dir) if spool_dir else None))
    return (generate_latest(registry) + generate_latest(live)).decode()
