"""A collector's /metrics (prometheus_client, multiprocess under gunicorn): what a scrape shows is what
every worker of that collector did, counted once — logins, submissions and releases, with latency
histograms, and the live gauges beside them."""

from __future__ import annotations

import concurrent.futures
import os
import re
import time

import pytest
import requests

from tests.e2e.conftest import login, release, submit, tls, user

pytestmark = pytest.mark.e2e
SAMPLE = re.compile(r'^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$', re.M)


def scrape(cluster, collector) -> str:
    answer = requests.get(f"{collector.url}/metrics", timeout=5, **tls(cluster))
    assert answer.status_code == 200
    return answer.text


def total(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    found = 0.0
    for m in SAMPLE.finditer(text):
        if m.group("name") != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
        if all(have.get(k) == v for k, v in labels.items()):
            found += float(m.group("value"))
    return found


def test_a_scrape_counts_every_workers_logins_submissions_and_releases_once(cluster):
    collector = cluster.collectors["c2"]
    bob = user(cluster, "bob")
    printer = cluster.printers[1]
    before = scrape(cluster, collector)
    sessions = []
    for _ in range(8):  # spread over the collector's workers by the kernel
        answer = login(cluster, printer["id"], url=collector.url, badge=bob["badge"])
        assert answer.status_code == 201
        sessions.append(answer.json()["session"])
    assert login(cluster, printer["id"], url=collector.url, badge="0000000001").status_code == 401
    submitted = submit(cluster, "bob", os.urandom(5000), url=collector.url)
    assert submitted.status_code == 201
    answer = release(cluster, sessions[-1], {"jobs": [submitted.json()["id"]]}, url=collector.url,
                     key=os.urandom(8).hex())
    assert answer.json()["results"][0]["status"] == "printed"
    after = scrape(cluster, collector)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, collector="c2", **labels) - total(before, name, collector="c2", **labels)

    assert grew("pullprint_collector_login_seconds_count", status="201") == 8
    assert grew("pullprint_collector_login_seconds_count", status="401") == 1
    assert grew("pullprint_collector_login_seconds_bucket", status="201", le="+Inf") == 8
    assert grew("pullprint_collector_login_seconds_sum", status="201") > 0
    assert grew("pullprint_collector_logins_total") == 8
    assert grew("pullprint_collector_logins_failed_total") == 1
    assert grew("pullprint_collector_submit_seconds_count", status="201") == 1
    assert grew("pullprint_collector_jobs_received_total") == 1
    assert grew("pullprint_collector_release_seconds_count", status="200") == 1
    assert grew("pullprint_collector_jobs_printed_total") == 1
    # The live gauges are there too, and the other collectors did not count c2's work.
    assert re.search(r'^pullprint_collector_spool_jobs\{collector="c2"\} \d', after, re.M)
    assert 'collector="c1"' not in after and 'collector="c3"' not in after
    assert "# TYPE pullprint_collector_login_seconds histogram" in after


def test_the_queue_depth_of_a_slow_printer_shows_while_its_jobs_go_out(cluster):
    """Three jobs released at once to a printer that takes 1.5 s each: the collector shows them queued
    for that printer (pullprint_collector_printer_queue_jobs), then none once they are out."""
    collector = cluster.collectors["c3"]
    carol = user(cluster, "carol")
    printer = cluster.printers[0]
    jobs = [submit(cluster, "carol", os.urandom(3000), url=collector.url).json()["id"] for _ in range(3)]
    session = login(cluster, printer["id"], url=collector.url, badge=carol["badge"]).json()["session"]
    cluster.sim.control.sink(printer["id"], delay_seconds=1.5)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(release, cluster, session, {"jobs": jobs}, url=collector.url, key=os.urandom(8).hex())
            seen = []
            while not answer.done():
                seen.append(total(scrape(cluster, collector), "pullprint_collector_printer_queue_jobs",
                                  collector="c3", printer=printer["id"]))
                time.sleep(0.2)
            assert [r["status"] for r in answer.result().json()["results"]] == ["printed"] * 3
    finally:
        cluster.sim.control.sink(printer["id"], delay_seconds=0)
    assert max(seen) >= 2, seen  # two still waiting while the first went out
    assert total(scrape(cluster, collector), "pullprint_collector_printer_queue_jobs", collector="c3",
                 printer=printer["id"]) == 0
