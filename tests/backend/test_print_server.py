"""A print server shares SecurePrint with workstations: two real cupsd, the workstation in its own network namespace."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cups
import pytest
import requests

from cups_backend import install  # noqa: E402
from cups_backend.cli import main as queue_main  # noqa: E402
from localcluster.cluster import LocalCluster  # noqa: E402
from pullprint.credentials import cluster_auth_header  # noqa: E402
from pullprint.cupsd import PrivateCupsd  # noqa: E402

pytestmark = pytest.mark.integration
QUEUE = "SecurePrint"
# The backend has run and given its verdict.
FINISHED = {cups.IPP_JOB_HELD, cups.IPP_JOB_STOPPED, cups.IPP_JOB_CANCELED, cups.IPP_JOB_ABORTED,
            cups.IPP_JOB_COMPLETED}


@dataclass(frozen=True)
class Link:
    """A veth pair between this host (the print server) and a network namespace (the workstation)."""

    netns: str
    veth: str
    server_ip: str
    workstation_ip: str

    @property
    def subnet(self) -> str:
        return self.server_ip.rsplit(".", 1)[0] + ".0/24"


def _ip(*args: str, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, timeout=30, check=False)


def _free_subnet() -> int:
    """A third octet for 10.231.N.0/24 that no interface here uses (another run may hold 10.231.7.0/24)."""
    used = _ip("-o", "-4", "addr").stdout
    for octet in range(7, 250):
        if f"10.231.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.231.N.0/24 subnet")


@pytest.fixture(scope="module")
def link() -> Iterator[Link]:
    if shutil.which("ip") is None:
        pytest.skip("the ip program (iproute2) is not installed; network namespaces cannot be created")
    octet = _free_subnet()
    pid = os.getpid()
    found = Link(netns=f"pullprint-ws-{pid}", veth=f"ppps{pid}", server_ip=f"10.231.{octet}.1",
                 workstation_ip=f"10.231.{octet}.2")
    peer = f"ppws{pid}"
    made = _ip("netns", "add", found.netns)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    try:
        steps = [
            (None, ["link", "add", found.veth, "type", "veth", "peer", "name", peer]),
            (None, ["link", "set", peer, "netns", found.netns]),
            (None, ["addr", "add", f"{found.server_ip}/24", "dev", found.veth]),
            (None, ["link", "set", found.veth, "up"]),
            (found.netns, ["addr", "add", f"{found.workstation_ip}/24", "dev", peer]),
            (found.netns, ["link", "set", peer, "up"]),
            (found.netns, ["link", "set", "lo", "up"]),
        ]
        for netns, args in steps:
            done = _ip(*args, netns=netns)
            assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"
        yield found
    finally:
        # By name: deleting one end of a veth pair deletes the other.
        _ip("link", "del", found.veth)
        _ip("netns", "del", found.netns)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pullprint-ps-"))
    path.chmod(0o755)  # backends run as lp read the spool files
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(base: Path) -> Iterator[LocalCluster]:
    with LocalCluster(base / "cluster", n_collectors=1, n_printers=1, with_cupsd=False) as running:
        yield running


@pytest.fixture(scope="module")
def print_server(base: Path, link: Link) -> Iterator[PrivateCupsd]:
    with PrivateCupsd.start(base / "print-server", listen=(link.server_ip,), allow=(link.subnet,),
                            log_level="debug") as daemon:
        yield daemon


@pytest.fixture(scope="module")
def workstation(base: Path, link: Link) -> Iterator[PrivateCupsd]:
    with PrivateCupsd.start(base / "workstation", netns=link.netns,
                            log_level="debug") as daemon:
        yield daemon


def _install(print_server: PrivateCupsd, cluster: LocalCluster, role: str, parallel: int) -> list[str]:
    argv = ["install", "--name", QUEUE, "--uri", f"pullprint://{cluster.lb_url[len('http://'):]}/",
            "--cups-server", print_server.server, "--backend-dir", str(print_server.backend_dir),
            "--server-root", str(print_server.server_root), "--token-file", str(cluster.secrets["submit_token"]),
            "--role", role, "--parallel", str(parallel)]
    assert queue_main(argv) == 0
    return [f"{QUEUE}-{i}" for i in range(1, parallel + 1)] if parallel > 1 else []


def _wait_job(conn, job_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        attrs = conn.getJobAttributes(job_id, requested_attributes=[
            "job-state", "job-state-reasons", "job-printer-state-message"])
        if attrs["job-state"] in FINISHED or time.monotonic() > deadline:
            return attrs
        time.sleep(0.1)


def _server_jobs(conn, title: str) -> list[dict]:
    """Every job with this title, by id: pycups' getJobs asks for /printers/ and leaves out class jobs."""
    jobs = []
    for job_id in range(1, 32):  # a few jobs per module; removing a queue deletes its jobs (gaps)
        with contextlib.suppress(cups.IPPError):
            jobs.append(conn.getJobAttributes(job_id))
    return [job for job in jobs if job.get("job-name") == title]


def _log_lines(daemon: PrivateCupsd, text: str) -> list[str]:
    return [line for line in daemon.error_log.read_text(errors="replace").splitlines() if text in line]


def _alice_jobs(cluster: LocalCluster) -> list[dict]:
    answer = requests.get(f"{cluster.analyst_url}/api/v1/users/alice/jobs",
                          headers=cluster_auth_header(cluster.secret("cluster_token")), timeout=10)
    answer.raise_for_status()
    return list(answer.json()["jobs"])


@pytest.mark.parametrize(("role", "parallel"), [("workstation", 1), ("print-server", 1), ("print-server", 2)])
def test_a_workstation_job_reaches_the_cluster_only_through_a_shared_queue(
        role: str, parallel: int, link: Link, cluster: LocalCluster, print_server: PrivateCupsd,
        workstation: PrivateCupsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    members = _install(print_server, cluster, role, parallel)
    out = capsys.readouterr().out
    server_conn = install.connect(print_server.server)
    ws_conn = install.connect(workstation.server)
    # The workstation's raw queue forwards over IPP to the print server, as a remote client.
    forward = f"Upstairs{role.replace('-', '')}{parallel}"
    kind = "classes" if members else "printers"
    try:
        ws_conn.addPrinter(forward, device=f"ipp://{link.server_ip}:{print_server.port}/{kind}/{QUEUE}",
                           ppdname="raw")
        # Any failure other than the one under test ends the job at once rather than in 300 s.
        ws_conn.setPrinterErrorPolicy(forward, "abort-job")
        ws_conn.enablePrinter(forward)
        ws_conn.acceptJobs(forward)
        # No spaces in the file name: cupsd 2.4.2-3+deb12u10 crashes on whitespace in document-name.
        doc = tmp_path / f"report-{role}-{parallel}.ps"
        body = b"%!PS\n" + os.urandom(50_000) + b"\n%%EOF\n"
        doc.write_bytes(body)
        done = subprocess.run(["lp", "-U", "alice", "-d", forward, str(doc)], env=workstation.env(),
                              capture_output=True, text=True, timeout=30, check=True)
        job_id = int(re.search(r"request id is \S+-(\d+)", done.stdout).group(1))  # type: ignore[union-attr]
        attrs = _wait_job(ws_conn, job_id)

        if role == "workstation":
            # The print server answers client-error-not-authorized, so the workstation's ipp backend
            # holds the job for authentication: alice's job waits there and never reaches the cluster.
            assert attrs["job-state"] == cups.IPP_JOB_HELD, (attrs, workstation.log_tail())
            assert "cups-held-for-authentication" in attrs["job-state-reasons"]
            refusal = "The printer or class is not shared"
            assert refusal in print_server.error_log.read_text(errors="replace"), print_server.log_tail()
            assert refusal in workstation.error_log.read_text(errors="replace"), workstation.log_tail()
            assert not _server_jobs(server_conn, doc.name)
            assert not [j for j in _alice_jobs(cluster) if j["title"] == doc.name]
        else:
            assert attrs["job-state"] == cups.IPP_JOB_COMPLETED, (
                attrs, _log_lines(print_server, "not shared") or print_server.log_tail())
            # On the print server the job belongs to alice and came from the workstation's address.
            [server_job] = _server_jobs(server_conn, doc.name)
            assert server_job["job-originating-user-name"] == "alice"
            assert server_job["job-originating-host-name"] == link.workstation_ip
            assert server_job["job-state"] == cups.IPP_JOB_COMPLETED
            deadline = time.monotonic() + 30
            while not (held := [j for j in _alice_jobs(cluster) if j["title"] == doc.name]):
                assert time.monotonic() < deadline, print_server.log_tail()
                time.sleep(0.2)
            [job] = held
            assert job["owner"] == "alice"
            assert job["sha256"] == hashlib.sha256(body).hexdigest()
            assert job["origin_host"] == link.workstation_ip
            assert job["state"] == "held"
        # cupsd holds what the role asked for, on the queue and on each member of a class.
        for name in [QUEUE, *members]:
            now = server_conn.getPrinterAttributes(name, requested_attributes=["printer-is-shared"])
            assert now["printer-is-shared"] is (role == "print-server"), name
    finally:
        with contextlib.suppress(cups.IPPError):
            ws_conn.cancelAllJobs(name=forward, purge_jobs=True)
        with contextlib.suppress(cups.IPPError):
            ws_conn.deletePrinter(forward)
        assert queue_main(["remove", "--name", QUEUE, "--cups-server", print_server.server]) == 0

    # The operator is told which role was used and whether the queue is shared.
    told = "(raw, shared: other hosts may print to it" if role == "print-server" else \
        "(raw, not shared: only this host may print to it"
    assert f"role {role}: " in out and told in out, out
