"""The locustfile drives a real cluster without a single failure (a smoke run, not a performance test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOCUST = Path(sys.executable).with_name("locust")


@pytest.fixture(scope="module")
def cluster():
    state = Path(tempfile.mkdtemp(prefix="pullprint-load-"))
    state.chmod(0o755)  # the lp user must be able to enter it (see tests/e2e/conftest.py)
    with LocalCluster(state, n_collectors=3, n_printers=2, with_cupsd=False) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _stats(path: Path) -> dict[str, dict]:
    """locust's --json-file: a list of request stats; keyed by (method, name)."""
    return {f"{e['method']} {e['name']}": e for e in json.loads(path.read_text())}


def test_workstations_and_terminals_run_without_failures(cluster, tmp_path):
    stats_file = tmp_path / "stats.json"
    env = {**os.environ, "PULLPRINT_CLUSTER_JSON": str(cluster.state_dir / "cluster.json")}
    run = subprocess.run([str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "-u", "10", "-r", "5", "-t", "15s",
                          "--stop-timeout", "20", "--only-summary", "--json-file", str(stats_file.with_suffix("")),
                          "--loglevel", "WARNING"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert stats_file.exists(), run.stderr[-3000:]
    stats = _stats(stats_file)
    failures = {name: e["num_failures"] for name, e in stats.items() if e["num_failures"]}
    assert not failures, f"{failures}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, run.stderr[-3000:]
    submitted = sum(e["num_requests"] for name, e in stats.items() if name.startswith("POST /api/v1/jobs"))
    logins = sum(e["num_requests"] for name, e in stats.items() if name.startswith("POST /api/v1/sessions ["))
    assert submitted > 0 and logins > 0, sorted(stats)
    # Whatever was printed arrived whole: every sink file matches its recorded size.
    for printer in cluster.printers:
        for sidecar in Path(printer["sink_dir"]).glob("*.json"):
            meta = json.loads(sidecar.read_text())
            assert sidecar.with_suffix(".prn").stat().st_size == meta["bytes"]
