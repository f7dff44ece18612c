"""The real HAProxy in front of real backends: spreading, dead-node detection, retries and runtime control."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from lb import haproxy, runtime
from tests.lb.conftest import Cluster

pytestmark = pytest.mark.integration

DETECTION_BOUND = 3.0  # seconds; the config's arithmetic says ~0.5 s (refused) and ~1.5 s (frozen)


def _spread(cluster: Cluster, n: int) -> Counter[str]:
    with requests.Session() as session:
        return Counter(cluster.whoami(session) for _ in range(n))


def test_requests_are_spread_evenly_over_all_collectors(make_cluster) -> None:
    cluster = make_cluster(3)
    assert _spread(cluster, 30) == Counter({"c1": 10, "c2": 10, "c3": 10})
    answer = requests.get(f"{cluster.lb_url}/whoami", timeout=5).json()
    assert answer["forwarded_for"] == "127.0.0.1"


def test_roundrobin_alternates(make_cluster) -> None:
    cluster = make_cluster(2, balance="roundrobin")
    order = [cluster.whoami() for _ in range(6)]
    assert order in (["c1", "c2"] * 3, ["c2", "c1"] * 3)


def _settle() -> None:
    # Just after start a server has passed only `rise` checks, and a single failure takes it down;
    # let a few more checks pass so the measurement shows the steady-state fall=2 behaviour.
    time.sleep(1.5)


def test_killed_collector_is_marked_down_fast(make_cluster) -> None:
    cluster = make_cluster(3)
    _settle()
    cluster.backends["c2"].kill()
    took = runtime.wait_for_state(cluster.socket_path, "c2", runtime.DOWN, timeout=10)
    print(f"\nkilled collector marked DOWN after {took:.3f} s")
    assert took < DETECTION_BOUND
    assert cluster.states() == {"c1": "UP", "c2": "DOWN", "c3": "UP"}


def test_frozen_collector_is_marked_down_and_comes_back(make_cluster) -> None:
    cluster = make_cluster(3)
    _settle()
    pid = cluster.backends["c3"].pid
    os.killpg(pid, signal.SIGSTOP)  # accepts connections (kernel backlog) but never answers
    try:
        took = runtime.wait_for_state(cluster.socket_path, "c3", runtime.DOWN, timeout=10)
        print(f"\nfrozen collector marked DOWN after {took:.3f} s")
        assert took < DETECTION_BOUND
    finally:
        os.killpg(pid, signal.SIGCONT)
    back = runtime.wait_for_state(cluster.socket_path, "c3", runtime.UP, timeout=10)
    print(f"thawed collector UP again after {back:.3f} s")
    assert back < DETECTION_BOUND


def test_requests_spanning_a_kill_all_succeed(make_cluster) -> None:
    """Requests sent right after a node dies, before any check noticed, are redispatched."""
    cluster = make_cluster(3)
    _settle()
    statuses, served_after_kill = [], Counter()
    with requests.Session() as session:
        for i in range(50):
            if i == 10:
                cluster.backends["c2"].kill()
            response = session.get(f"{cluster.lb_url}/whoami", timeout=10)
            statuses.append(response.status_code)
            if i >= 10 and response.status_code == 200:
                served_after_kill[response.json()["id"]] += 1
            time.sleep(0.02)  # 50 requests over ~1.5 s: before, during and after detection
    assert statuses == [200] * 50
    assert served_after_kill["c2"] == 0
    assert served_after_kill["c1"] > 0 and served_after_kill["c3"] > 0


def test_not_ready_collector_gets_no_traffic_until_ready_again(make_cluster) -> None:
    cluster = make_cluster(3)
    cluster.set_ready("c3", False)
    runtime.wait_for_state(cluster.socket_path, "c3", runtime.DOWN, timeout=5)
    assert _spread(cluster, 30)["c3"] == 0
    cluster.set_ready("c3", True)
    runtime.wait_for_state(cluster.socket_path, "c3", runtime.UP, timeout=5)
    assert _spread(cluster, 30)["c3"] == 10


def _in_flight(cluster: Cluster, method: str, test_id: str) -> tuple[dict[str, object], threading.Thread]:
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            # A GET carries no body (a request body the dying server never read makes its kernel
            # answer RST, which HAProxy does not count as an empty response).
            body = b"job bytes" * 100 if method == "POST" else None
            response = requests.request(method, f"{cluster.lb_url}/slow?seconds=1", data=body,
                                        headers={"X-Test-Id": test_id}, timeout=20)
            outcome["status"] = response.status_code
            outcome["body"] = response.text
        except requests.RequestException as exc:  # a client error is an acceptable outcome too
            outcome["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 5
    while not cluster.receipts(test_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    return outcome, thread


def test_post_is_not_replayed_when_its_server_dies_mid_request(make_cluster) -> None:
    cluster = make_cluster(3)
    test_id = uuid.uuid4().hex
    outcome, thread = _in_flight(cluster, "POST", test_id)
    holders = cluster.receipts(test_id)
    assert sum(holders.values()) == 1, holders
    (victim,) = holders
    cluster.backends[victim].kill()
    thread.join(20)
    time.sleep(1.0)  # time for any (wrong) replay to land
    assert cluster.receipts(test_id) == Counter({victim: 1})  # received once, cluster-wide
    assert outcome.get("status", 502) >= 500 or "error" in outcome, outcome  # an error, not a duplicate


def test_get_is_retried_elsewhere_when_its_server_dies_mid_request(make_cluster) -> None:
    cluster = make_cluster(3)
    test_id = uuid.uuid4().hex
    outcome, thread = _in_flight(cluster, "GET", test_id)
    (victim,) = cluster.receipts(test_id)
    cluster.backends[victim].kill()
    thread.join(20)
    assert outcome.get("status") == 200, outcome
    receipts = cluster.receipts(test_id)
    assert receipts[victim] == 1 and sum(receipts.values()) == 2


def test_drain_sends_no_new_requests_and_ready_brings_them_back(make_cluster) -> None:
    cluster = make_cluster(3)
    runtime.drain(cluster.socket_path, "c1")
    assert cluster.states()["c1"] == runtime.DRAIN
    assert _spread(cluster, 30)["c1"] == 0
    runtime.ready(cluster.socket_path, "c1")
    assert cluster.states()["c1"] == runtime.UP
    assert _spread(cluster, 30)["c1"] == 10


def test_drain_lets_a_request_in_flight_finish(make_cluster) -> None:
    cluster = make_cluster(2)
    test_id = uuid.uuid4().hex
    outcome, thread = _in_flight(cluster, "POST", test_id)
    (holder,) = cluster.receipts(test_id)
    runtime.drain(cluster.socket_path, holder)
    thread.join(20)
    assert outcome.get("status") == 200, outcome


def test_maint_takes_a_collector_out(make_cluster) -> None:
    cluster = make_cluster(2)
    runtime.maint(cluster.socket_path, "c2")
    assert cluster.states()["c2"] == runtime.MAINT
    assert _spread(cluster, 10) == Counter({"c1": 10})
    runtime.ready(cluster.socket_path, "c2")
    runtime.wait_for_state(cluster.socket_path, "c2", runtime.UP, timeout=5)


def test_runtime_errors_name_the_problem(make_cluster) -> None:
    cluster = make_cluster(1)
    with pytest.raises(Exception, match="No such server"):
        runtime.drain(cluster.socket_path, "c9")
    with pytest.raises(Exception, match="cannot talk to HAProxy"):
        runtime.server_states(cluster.socket_path + ".missing")


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset:offset + size]


def test_streamed_chunked_upload_passes_through_intact(make_cluster) -> None:
    cluster = make_cluster(2)
    document = os.urandom(5 * 1024 * 1024)
    response = requests.post(f"{cluster.lb_url}/upload", data=_chunks(document), timeout=60)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["chunked"] is True  # streamed, no Content-Length known up front
    assert answer["size"] == len(document)
    assert answer["sha256"] == hashlib.sha256(document).hexdigest()


def test_reload_applies_a_new_config_without_refusing_requests(make_cluster) -> None:
    cluster = make_cluster(3)
    text = cluster.config_path.read_text()
    cluster.config_path.write_text("\n".join(line for line in text.splitlines()
                                             if not line.strip().startswith("server c3 ")) + "\n")
    stop, failures = threading.Event(), []

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    if session.get(f"{cluster.lb_url}/whoami", timeout=5).status_code != 200:
                        failures.append("5xx")
                except requests.RequestException as exc:
                    failures.append(repr(exc))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        new = haproxy.reload(cluster.haproxy, cluster.config_path, cluster.state_dir / "haproxy.log",
                             socket_path=cluster.socket_path)
        cluster.haproxy = new
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(10)
    try:
        assert failures == []
        assert set(runtime.server_states(cluster.socket_path)) == {"c1", "c2"}
        assert set(_spread(cluster, 10)) == {"c1", "c2"}
    finally:
        new.stop()
