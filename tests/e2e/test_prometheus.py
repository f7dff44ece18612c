"""A real Prometheus (Debian's package) scrapes the cluster over mutual TLS, loads the alert rules, and
answers every query of the Grafana dashboard; promtool checks the rules and runs their unit tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from pullprint import daemons
from tests.e2e.conftest import login, user, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "pullprint-alerts.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "pullprint.json"

if not (shutil.which("prometheus") and shutil.which("promtool")):
    pytest.skip("Debian's prometheus package is not installed (scripts/run installs it)", allow_module_level=True)


def test_the_alert_rules_are_valid_and_fire_on_what_they_should():
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", RULES.with_suffix(".test.yml").name], cwd=RULES.parent,
                            capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture(scope="module")
def prometheus(cluster):
    folder = Path(tempfile.mkdtemp(prefix="pullprint-prometheus-"))
    cert, key = cluster.admin_cert
    tls_config = {"ca_file": cluster.ca_file, "cert_file": cert, "key_file": key}

    def job(name: str, urls: list[str]) -> dict:
        return {"job_name": name, "scheme": "https", "tls_config": tls_config, "scrape_interval": "1s",
                "static_configs": [{"targets": [u.split("://", 1)[1] for u in urls]}]}

    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(RULES)],
              "scrape_configs": [job("pullprint-collector", [c.url for c in cluster.collectors.values()]),
                                 job("pullprint-analyst", [cluster.analyst_url]),
                                 # HAProxy's own exporter, on its loopback stats port (plain HTTP)
                                 {"job_name": "haproxy", "scrape_interval": "1s",
                                  "static_configs": [{"targets": [cluster.lb_stats_url.split("://", 1)[1]]}]}]}
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = daemons.free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(["prometheus", f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), 30, "prometheus to start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def query(url: str, expr: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def test_prometheus_scrapes_every_service_and_the_dashboard_and_rules_work(cluster, prometheus):
    targets = len(cluster.collectors) + 2
    wait_for(lambda: len([r for r in query(prometheus, "up == 1")]) == targets, 30, "every target up")
    alice = user(cluster, "alice")
    # A series Prometheus has seen once, then growing: rate() needs the rise between two scrapes.
    assert login(cluster, cluster.printers[0]["id"], badge=alice["badge"]).status_code == 201
    wait_for(lambda: query(prometheus, 'pullprint_collector_login_seconds_count{status="201"}'), 30, "the series")
    time.sleep(1.5)
    for _ in range(5):
        assert login(cluster, cluster.printers[0]["id"], badge=alice["badge"]).status_code == 201
    wait_for(lambda: query(prometheus, 'sum(increase(pullprint_collector_login_seconds_count{status="201"}[1m])) > 0'),
             30, "the logins in Prometheus")
    p99 = query(prometheus, 'histogram_quantile(0.99, sum by (le) (rate(pullprint_collector_login_seconds_bucket'
                            '{status="201"}[1m])))')
    assert p99 and 0 < float(p99[0]["value"][1]) <= 120
    # The analyst times its answers too (the collectors' logins asked it for the users and their jobs).
    wait_for(lambda: query(prometheus, 'sum(rate(pullprint_analyst_request_seconds_count{job="pullprint-analyst"}'
                                       '[1m])) > 0'), 30, "the analyst's request histogram")
    # HAProxy says which collectors it sends to (1: UP); its console backend holds the analyst.
    serving = query(prometheus, 'haproxy_server_status{job="haproxy", proxy="be_collectors", state="UP"} == 1')
    assert {r["metric"]["server"] for r in serving} == set(cluster.collectors)
    assert {r["metric"]["server"] for r in query(prometheus, 'haproxy_server_status{job="haproxy", '
            'proxy="be_console", state="UP"} == 1')} == {"analyst"}
    # The SNMP poller's figures and every printer's state reach Prometheus too.
    wait_for(lambda: {r["metric"]["printer"] for r in query(prometheus, "max by (printer) (pullprint_printer_state)")}
             == {p["id"] for p in cluster.printers}, 30, "every printer's state")
    # The rules load and evaluate; nothing is firing in a healthy cluster.
    wait_for(lambda: _rules(prometheus) and all(r["health"] == "ok" for r in _rules(prometheus)), 30, "rules evaluated")
    assert {r["name"] for r in _rules(prometheus)} >= {"PullprintCollectorDown", "PullprintPrinterInError",
                                                      "PullprintLoginP99OverBudget", "PullprintUnderReplicatedJobs"}
    # Every query of the dashboard is valid PromQL on this data; the ones about the cluster return something.
    panels = json.loads(DASHBOARD.read_text())["panels"]
    empty = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"].replace("$collector", ".*")
            if not query(prometheus, expr):
                empty.append(panel["title"])
    # No release nor submit yet in this window (a printer's queue has a series once a release went to it).
    assert set(empty) <= {"Release latency", "Submit latency", "Jobs on their way to each printer"}, empty


def _rules(url: str) -> list[dict]:
    groups = requests.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_a_jammed_printer_shows_in_error_in_prometheus(cluster, prometheus):
    cluster.sim.control.set_fault("p2", "jam")
    try:
        wait_for(lambda: query(prometheus, 'max by (printer) (pullprint_printer_state{printer="p2", state="error"})'
                                           " == 1"), 30, "p2 in error")
    finally:
        cluster.sim.control.clear("p2")
    wait_for(lambda: query(prometheus, 'max by (printer) (pullprint_printer_state{printer="p2", state="ok"}) == 1'),
             30, "p2 back to ok")
