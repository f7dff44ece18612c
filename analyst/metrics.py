"""Prometheus text exposition: request counts of this process, and job and event counts from the database."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping


class RequestCounter:
    """Requests answered by this process, by method, endpoint and status (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def add(self, method: str, endpoint: str, status: int) -> None:
        with self._lock:
            self._counts[(method, endpoint, status)] += 1

    def snapshot(self) -> dict[tuple[str, str, int], int]:
        with self._lock:
            return dict(self._counts)


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(jobs_by_state: Mapping[str, int], events_by_kind: Mapping[str, int],
           requests: Mapping[tuple[str, str, int], int]) -> str:
    """The /metrics page."""
    lines = ["# HELP pullprint_analyst_jobs Jobs in the registry by state.",
             "# TYPE pullprint_analyst_jobs gauge"]
    lines += [f'pullprint_analyst_jobs{{state="{_label(s)}"}} {n}' for s, n in sorted(jobs_by_state.items())]
    lines += ["# HELP pullprint_analyst_events_total Events in the log by kind.",
              "# TYPE pullprint_analyst_events_total counter"]
    lines += [f'pullprint_analyst_events_total{{kind="{_label(k)}"}} {n}'
              for k, n in sorted(events_by_kind.items())]
    lines += ["# HELP pullprint_analyst_requests_total HTTP requests answered by this process.",
              "# TYPE pullprint_analyst_requests_total counter"]
    lines += [f'pullprint_analyst_requests_total{{method="{_label(m)}",endpoint="{_label(e)}",'
              f'status="{s}"}} {n}' for (m, e, s), n in sorted(requests.items())]
    return "\n".join(lines) + "\n"
