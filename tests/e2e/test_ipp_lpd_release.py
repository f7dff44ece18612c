"""IPP and LPD printers released through HAProxy, with collectors run as an unprivileged service user.

The cluster here is deployed as Ansible deploys it: each collector runs as the `pullprint` system
user with a 0700 spool, and its own cupsd (for ipp/lpd output) runs as that user too. Printers:
p1 raw 9100, p2 a real ippeveprinter, p3 an LPD receiver. HAProxy drains the two collectors that
hold the job, so the release lands on the third: in "direct" mode it asks a holder to print, in
"pull" mode it fetches the job and prints it itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from lb import runtime
from localcluster.cluster import LocalCluster
from tests.e2e.conftest import cluster_state_dir, login, received, release, sha, submit, user

SERVICE_USER = "pullprint"


def ensure_service_user(name: str) -> pwd.struct_passwd:
    """The system account collectors run as (Ansible's pullprint_user), created if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


@pytest.fixture(scope="module")
def deployed():
    if os.geteuid() != 0:
        pytest.skip("running collectors as another user needs root")
    account = ensure_service_user(SERVICE_USER)
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=3, n_printers=1, ipp_printers=1, lpd_printers=1,
                      collector_user=SERVICE_USER, with_cupsd=False,
                      extra_env={"PULLPRINT_COLLECTOR_HEALTH_MAX_AGE": "0.5",
                                 "PULLPRINT_COLLECTOR_POLL_INTERVAL_SECONDS": "1"}) as running:
        yield running, account
    shutil.rmtree(state, ignore_errors=True)


def _cupsd_owners(cluster: LocalCluster) -> dict[str, int]:
    """The uid each collector's own cupsd runs as, found by its config path under the collector's spool."""
    owners = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            uid = int(next(line for line in (proc / "status").read_text().splitlines()
                           if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration):
            continue
        if not argv or not argv[0].endswith(b"cupsd"):
            continue
        for collector in cluster.collectors.values():
            if str(collector.spool_dir).encode() in b" ".join(argv):
                owners[collector.id] = uid
    return owners


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["direct", "pull"])
@pytest.mark.parametrize("printer_index", [1, 2], ids=["ipp", "lpd"])
def test_release_through_haproxy_reaches_an_ipp_or_lpd_printer(deployed, mode: str, printer_index: int) -> None:
    cluster, account = deployed
    printer = cluster.printers[printer_index]
    assert printer["uri"].startswith(("ipp://", "lpd://"))
    alice = user(cluster, "alice")
    data = b"%!PS-Adobe-3.0\n" + os.urandom(60_000) + b"\nshowpage\n"
    submitted = submit(cluster, "alice", data, url=cluster.collectors["c1"].url, title="Quarterly report")
    assert submitted.status_code == 201, submitted.text
    holders = submitted.json()["locations"]
    assert len(holders) == 2
    releaser = next(c for c in cluster.collectors.values() if c.id not in holders)
    if mode == "pull":
        cluster.stop_collector(releaser.id)
        cluster.start_collector(releaser.id, release_mode="pull")
    runtime.wait_for_state(cluster.lb_socket, releaser.id, runtime.UP, timeout=20)
    for holder in holders:  # every new request goes to the collector that holds no copy
        runtime.drain(cluster.lb_socket, holder)
    try:
        session = login(cluster, printer["id"], badge=alice["badge"])
        assert session.status_code == 201, session.text
        answer = release(cluster, session.json()["session"], {"jobs": [submitted.json()["id"]]},
                         key=f"ipp-lpd-{mode}-{printer_index}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["status"] == "printed", answer.json()
    finally:
        for holder in holders:
            runtime.ready(cluster.lb_socket, holder)
        if mode == "pull":
            cluster.stop_collector(releaser.id)
            cluster.start_collector(releaser.id)
    arrivals = [r for r in received(printer) if r["sha256"] == sha(data)]
    assert len(arrivals) == 1, received(printer)  # the exact bytes, once
    if printer["uri"].startswith("ipp://"):
        assert arrivals[0]["job_name"] == "Quarterly\u00a0report"  # readable; cupsd u10 survives it
        assert arrivals[0]["user"] == "alice"
    else:
        assert arrivals[0]["control"]["user"] == "alice"
    # It went out through a collector's own cupsd, which runs as the service user, never as root.
    owners = _cupsd_owners(cluster)
    assert owners and set(owners.values()) == {account.pw_uid}, owners
    for collector in cluster.collectors.values():
        assert (collector.spool_dir.stat().st_mode & 0o777) == 0o700
        assert collector.spool_dir.stat().st_uid == account.pw_uid
