"""The whole demo cluster for end-to-end tests, and small helpers to drive it like a workstation and a terminal."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests

from localcluster.cluster import LocalCluster

MAX_JOB_BYTES = 4 * 1024 * 1024


def cluster_state_dir() -> Path:
    """A state folder the lp user can enter (cupsd's backends run as lp); pytest's own is private."""
    state = Path(tempfile.mkdtemp(prefix="pullprint-e2e-"))
    state.chmod(0o755)
    return state


@pytest.fixture(scope="package")
def cluster():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=3, n_printers=2,
                      extra_env={"PULLPRINT_COLLECTOR_MAX_JOB_BYTES": str(MAX_JOB_BYTES),
                                 "PULLPRINT_COLLECTOR_HEALTH_MAX_AGE": "0.5",
                                 "PULLPRINT_COLLECTOR_REPAIR_GRACE_SECONDS": "2",
                                 "PULLPRINT_COLLECTOR_POLL_INTERVAL_SECONDS": "1"}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def tls(cluster: LocalCluster) -> dict:
    """requests' TLS arguments for calling any part of `cluster`: its CA, and the operator's certificate
    (collectors and the analyst want one; the load balancer's public front end does not ask)."""
    return {"verify": cluster.ca_file, "cert": cluster.admin_cert} if cluster.tls else {}


# A whole one-page PDF (a page tree with one page): what mail, uploads and phones send in tests.
ONE_PAGE_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
                b"endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n"
                b"%%EOF\n")


def submit(cluster: LocalCluster, owner: str, data: bytes, *, url: str | None = None, title: str = "doc",
           headers: dict[str, str] | None = None) -> requests.Response:
    """POST a document the way the CUPS backend does (to the LB unless a collector URL is given)."""
    base = url or cluster.lb_url
    all_headers = {"Authorization": f"Bearer {cluster.secret('submit_token')}", "X-Pullprint-Owner": owner,
                   "X-Pullprint-Title": title, "Content-Type": "application/octet-stream", **(headers or {})}
    return requests.post(f"{base}/api/v1/jobs", data=data, headers=all_headers, timeout=30, **tls(cluster))


def login(cluster: LocalCluster, printer: str, *, url: str | None = None, **credentials: str) -> requests.Response:
    return requests.post(f"{url or cluster.lb_url}/api/v1/sessions", json={"printer": printer, **credentials},
                         timeout=10, **tls(cluster))


def release(cluster: LocalCluster, token: str, body: dict, *, url: str | None = None,
            key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{url or cluster.lb_url}/api/v1/sessions/{token}/release", json=body, headers=headers,
                         timeout=120, **tls(cluster))


def received(printer: dict) -> list[dict]:
    """What a simulated printer received: one entry per connection, with its bytes' SHA-256."""
    sink = Path(printer["sink_dir"])
    entries = []
    for sidecar in sorted(sink.glob("*.json")):
        entries.append(json.loads(sidecar.read_text()))
    return entries


def received_hashes(printer: dict) -> list[str]:
    return [e["sha256"] for e in received(printer)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def user(cluster: LocalCluster, name: str) -> dict:
    return next(u for u in cluster.describe()["users"] if u["name"] == name)


def analyst_call(cluster: LocalCluster, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{cluster.analyst_url}/api/v1{path}", timeout=5, **tls(cluster), **kwargs)


def analyst_get(cluster: LocalCluster, path: str) -> dict:
    return analyst_call(cluster, "GET", path).json()
