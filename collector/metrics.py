"""Prometheus metrics for a collector: counters kept in Redis so every worker process adds to the same numbers."""

from __future__ import annotations

from typing import Any

from pullprint import keys


def count(redis: Any, collector_id: str, name: str, amount: int = 1) -> None:
    try:
        redis.hincrby(keys.collector_metrics(collector_id), name, amount)
    except Exception:  # noqa: BLE001 - metrics never fail a request
        pass


GAUGE_HELP = {
    "spool_jobs": "Job copies in this collector's spool.",
    "journal_entries": "Changes journalled for the analyst, not yet replayed.",
    "under_replicated_jobs": "Held jobs with fewer live copies than replicas, counted on the collector that "
                             "copies them again (the sum over collectors is the cluster's count).",
    "replication_census_age_seconds": "Seconds since under_replicated_jobs was counted (every 5 s, or "
                                      "when the spool or membership changed).",
}


def render(redis: Any, collector_id: str, gauges: dict[str, float]) -> str:
    lines = []
    try:
        counters = redis.hgetall(keys.collector_metrics(collector_id))
    except Exception:  # noqa: BLE001
        counters = {}
    for name, value in sorted(counters.items()):
        metric = f"pullprint_collector_{name}_total"
        lines += [f"# TYPE {metric} counter", f'{metric}{{collector="{collector_id}"}} {value}']
    for name, value in sorted(gauges.items()):
        metric = f"pullprint_collector_{name}"
        if name in GAUGE_HELP:
            lines.append(f"# HELP {metric} {GAUGE_HELP[name]}")
        lines += [f"# TYPE {metric} gauge", f'{metric}{{collector="{collector_id}"}} {value}']
    return "\n".join(lines) + "\n"
