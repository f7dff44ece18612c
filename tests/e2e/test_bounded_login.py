"""A dead collector never stalls a login and never shows a terminal a 5xx, even before HAProxy notices."""

from __future__ import annotations

import concurrent.futures
import time

import requests

from tests.e2e.conftest import login, user

BUDGET = 2.0


def test_logins_through_the_lb_while_a_collector_is_killed(cluster):
    alice = user(cluster, "alice")
    printer = cluster.printers[0]["id"]
    outcomes: list[tuple[float, int, float]] = []  # (when, status, seconds)
    retried: list[str] = []

    def terminal(n: int) -> None:
        for _ in range(n):
            started = time.monotonic()
            status = 0
            # Like a badge terminal: a login whose answer was cut off (its collector died while
            # sending it, which HAProxy cannot retry) is sent once more; a login is safe to repeat.
            for attempt in range(2):
                try:
                    status = login(cluster, printer, badge=alice["badge"]).status_code
                    break
                except requests.RequestException as exc:
                    if attempt == 0:
                        retried.append(type(exc).__name__)
            outcomes.append((started, status, time.monotonic() - started))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(terminal, 60) for _ in range(4)]
        time.sleep(0.5)
        kill_at = time.monotonic()
        cluster.kill_collector("c2")
        for future in futures:
            future.result()
    try:
        assert outcomes and any(when > kill_at for when, _, _ in outcomes)
        failures = [(round(when - kill_at, 2), status) for when, status, _ in outcomes if status != 201]
        assert failures == []  # no 5xx; every login answered (at most one resend), before or after HAProxy noticed
        assert len(retried) <= 4, retried  # at most the logins in flight on the dying node
        slowest = max(seconds for _, _, seconds in outcomes)
        assert slowest < BUDGET
    finally:
        cluster.start_collector("c2")
