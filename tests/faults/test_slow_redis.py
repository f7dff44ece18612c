"""A slow link to Redis never makes a login outlast its budget: the login's Redis calls share its deadline.

The collectors reach Redis through the fault suite's TCP proxy, which holds every chunk a while in
each direction. A round trip just under the Redis client's 0.5 s socket timeout is the worst case:
every call answers, slowly. Logins go to one collector directly (HAProxy's own health checks are
not the subject), one after another, a badge each time, as a terminal sends them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
import requests

from localcluster.cluster import LocalCluster
from tests.e2e.conftest import cluster_state_dir, login, tls, user
from tests.faults.run import ProxyLinks

pytestmark = pytest.mark.e2e
BUDGET = 2.0  # the login budget (collector login_budget_seconds) the terminal is promised
LOGINS = 12


@pytest.fixture(scope="module")
def slowed() -> Iterator[tuple[LocalCluster, ProxyLinks]]:
    state = cluster_state_dir()
    links = ProxyLinks(state / "proxies", names=("redis",))
    try:
        with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False, collector_link=links) as running:
            yield running, links
    finally:
        links.stop()
        shutil.rmtree(state, ignore_errors=True)


def _logins(cluster: LocalCluster, count: int) -> list[tuple[int, float]]:
    alice = user(cluster, "alice")
    printer = cluster.printers[0]["id"]
    url = cluster.collectors["c1"].url
    outcomes = []
    for _ in range(count):
        started = time.monotonic()
        try:
            answer = login(cluster, printer, url=url, badge=alice["badge"])
            status = answer.status_code
        except requests.RequestException:
            status = 0
        outcomes.append((status, time.monotonic() - started))
        if status == 201:  # the session it opened serves the terminal's next call
            listed = requests.get(f"{url}/api/v1/sessions/{answer.json()['session']}", timeout=10, **tls(cluster))
            assert listed.status_code == 200, listed.text
    return outcomes


@pytest.mark.parametrize("delay", [0.2, 0.35, 1.0])
def test_logins_stay_within_their_budget_with_the_redis_link_slowed(
        slowed: tuple[LocalCluster, ProxyLinks], delay: float) -> None:
    cluster, links = slowed
    assert all(status == 201 for status, _ in _logins(cluster, 3))  # warm, with the link as it should be
    assert links.links.set("redis", f"delay {delay}").startswith("ok delay")
    try:
        outcomes = _logins(cluster, LOGINS)
    finally:
        links.links.set("redis", "pass")
    slowest = max(seconds for _, seconds in outcomes)
    print(f"redis link delayed {delay} s each way: logins {[round(s, 2) for _, s in outcomes]}")
    assert [status for status, _ in outcomes] == [201] * LOGINS, outcomes
    assert slowest < BUDGET, f"a login took {slowest:.2f} s with the Redis link delayed {delay} s each way"
