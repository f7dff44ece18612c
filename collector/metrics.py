"""Prometheus metrics for a collector: counters kept in Redis so every worker process adds to the same numbers."""

from __future__ import annotations

from typing import Any

from pullprint import keys


def _key(collector_id: str) -> str:
    return f"{keys.PREFIX}metrics:collector:{collector_id}"


def count(redis: Any, collector_id: str, name: str, amount: int = 1) -> None:
    try:
        redis.hincrby(_key(collector_id), name, amount)
    except Exception:  # noqa: BLE001 - metrics never fail a request
        pass


def render(redis: Any, collector_id: str, gauges: dict[str, float]) -> str:
    lines = []
    try:
        counters = redis.hgetall(_key(collector_id))
    except Exception:  # noqa: BLE001
        counters = {}
    for name, value in sorted(counters.items()):
        metric = f"pullprint_collector_{name}_total"
        lines += [f"# TYPE {metric} counter", f'{metric}{{collector="{collector_id}"}} {value}']
    for name, value in sorted(gauges.items()):
        metric = f"pullprint_collector_{name}"
        lines += [f"# TYPE {metric} gauge", f'{metric}{{collector="{collector_id}"}} {value}']
    return "\n".join(lines) + "\n"
