"""A print server shares SecurePrint with workstations: two real cupsd, the workstation in its own network namespace.

On a print server printing to the queue needs an authenticated user (issue 9): a workstation's
unauthenticated job is refused, Basic over TLS with a real local account and PeerCred for a local
user are taken, and the job's owner at the cluster is the authenticated user, whatever name the
client claimed. The print server submits with its own credential, issued by the analyst.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cups
import pytest

from cups_backend import install
from cups_backend.cli import main as queue_main
from localcluster.cluster import LocalCluster
from pullprint.cupsd import PrivateCupsd
from tests.backend import ipp_submit
from tests.e2e.conftest import ONE_PAGE_PDF, analyst_call, analyst_get, login, release

pytestmark = pytest.mark.integration
QUEUE = "SecurePrint"
PRINT_SERVER_HOST = "print-server-1"  # the print server's submitting-host credential names it
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


@dataclass(frozen=True)
class Account:
    name: str
    password: str


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    """A real local account on the print server (cupsd checks Basic passwords with PAM, PeerCred by uid)."""
    if os.geteuid() != 0:
        pytest.skip("creating a local account for the authentication tests needs root")
    found = Account(f"ppauth{os.getpid() % 100000}", secrets.token_urlsafe(12))
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", found.name], check=True,
                   capture_output=True, timeout=30)
    try:
        subprocess.run(["chpasswd"], input=f"{found.name}:{found.password}\n", text=True, check=True,
                       capture_output=True, timeout=30)
        yield found
    finally:
        subprocess.run(["userdel", found.name], check=False, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def token_file(base: Path, cluster: LocalCluster) -> Path:
    """The print server's own credential, issued by the analyst for PRINT_SERVER_HOST."""
    answer = analyst_call(cluster, "POST", "/submitters", json={"host": PRINT_SERVER_HOST})
    assert answer.status_code in (200, 201), answer.text
    path = base / "print-server-token"
    path.write_text(answer.json()["token"])
    path.chmod(0o600)
    return path


def _install(print_server: PrivateCupsd, cluster: LocalCluster, token_file: Path, role: str,
             parallel: int) -> list[str]:
    # Through the domain socket, as root: once the queue has the pullprint policy, changing it needs
    # @SYSTEM, which root is there by PeerCred.
    address = cluster.lb_url.split("://", 1)[1]
    scheme = "pullprints" if cluster.tls else "pullprint"
    argv = ["install", "--name", QUEUE, "--uri", f"{scheme}://{address}/",
            *(["--ca-file", cluster.ca_file] if cluster.tls else []),
            "--cups-server", str(print_server.socket_path), "--backend-dir", str(print_server.backend_dir),
            "--server-root", str(print_server.server_root), "--token-file", str(token_file),
            "--role", role, "--parallel", str(parallel), "--skip-crash-probe"]
    assert queue_main(argv) == 0
    return [f"{QUEUE}-{i}" for i in range(1, parallel + 1)] if parallel > 1 else []


def _remove(print_server: PrivateCupsd) -> None:
    assert queue_main(["remove", "--name", QUEUE, "--cups-server", str(print_server.socket_path)]) == 0


def _wait_job(conn, job_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        attrs = conn.getJobAttributes(job_id, requested_attributes=[
            "job-state", "job-state-reasons", "job-printer-state-message"])
        if attrs["job-state"] in FINISHED or time.monotonic() > deadline:
            return attrs
        time.sleep(0.1)


def _log_lines(daemon: PrivateCupsd, text: str) -> list[str]:
    return [line for line in daemon.error_log.read_text(errors="replace").splitlines() if text in line]


def _jobs_of(cluster: LocalCluster, owner: str) -> list[dict]:
    return list(analyst_get(cluster, f"/users/{owner}/jobs")["jobs"])


def _arrived(cluster: LocalCluster, owner: str, title: str, server: PrivateCupsd, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while not (held := [j for j in _jobs_of(cluster, owner) if j["title"] == title]):
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)
    [job] = held
    return job


def _netns_ipp(link: Link, url: str, user: str, document: Path, *, title: str,
               auth: Account | None = None) -> dict:
    """An IPP Print-Job from the workstation's network namespace, claiming `user` as requesting-user-name."""
    argv = ["ip", "netns", "exec", link.netns, sys.executable, ipp_submit.__file__, url, user, str(document),
            "--title", title, *(["--auth", f"{auth.name}:{auth.password}"] if auth else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(("role", "parallel"), [("workstation", 1), ("print-server", 1), ("print-server", 2)])
def test_a_workstation_job_reaches_the_cluster_only_shared_and_authenticated(
        role: str, parallel: int, link: Link, cluster: LocalCluster, print_server: PrivateCupsd,
        workstation: PrivateCupsd, account: Account, token_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    members = _install(print_server, cluster, token_file, role, parallel)
    out = capsys.readouterr().out
    server_conn = install.connect(str(print_server.socket_path))
    ws_conn = install.connect(workstation.server)
    # The workstation's raw queue forwards over IPP to the print server, as a remote client, unauthenticated.
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

        # Either way the workstation's ipp backend is refused, so it holds alice's job for
        # authentication there: it never reaches the cluster as "alice", whatever lp -U said.
        assert attrs["job-state"] == cups.IPP_JOB_HELD, (attrs, workstation.log_tail())
        assert "cups-held-for-authentication" in attrs["job-state-reasons"]
        assert not [j for j in _jobs_of(cluster, "alice") if j["title"] == doc.name]
        if role == "workstation":
            refusal = "The printer or class is not shared"
            assert refusal in print_server.error_log.read_text(errors="replace"), print_server.log_tail()
            assert refusal in workstation.error_log.read_text(errors="replace"), workstation.log_tail()
        else:
            # The workstation's ipp backend upgraded to TLS, then was asked for a user it could not give.
            asked = f"/{kind}/{QUEUE}) from {link.workstation_ip}"
            assert [line for line in _log_lines(print_server, "Returning HTTP Unauthorized for ") if asked in line], \
                print_server.log_tail()
            url = f"ipp://{link.server_ip}:{print_server.port}/{kind}/{QUEUE}"
            tls_url = url.replace("ipp://", "ipps://", 1)
            claimed = tmp_path / f"claimed-{parallel}.ps"
            claimed.write_bytes(body)
            # The account's password in clear is refused (426), a wrong one too (401), over TLS.
            assert _netns_ipp(link, url, "alice", claimed, title="clear", auth=account)["http"] == 426
            wrong = Account(account.name, "not-the-password")
            assert _netns_ipp(link, tls_url, "alice", claimed, title="wrong", auth=wrong)["http"] == 401
            assert _netns_ipp(link, tls_url, "alice", claimed, title="anonymous")["http"] == 401
            # Basic over TLS as the account, claiming to be alice: the job is the account's.
            answer = _netns_ipp(link, tls_url, "alice", claimed, title=claimed.name, auth=account)
            assert answer["http"] == 200 and answer["ipp"] is not None and answer["ipp"] < 0x0400, answer
            job = _arrived(cluster, account.name, claimed.name, print_server)
            assert job["owner"] == account.name
            assert job["sha256"] == hashlib.sha256(body).hexdigest()
            # Submitted with the print server's own credential: that host is the job's origin; the
            # workstation's address is what the print server's cupsd saw.
            assert job["origin_host"] == PRINT_SERVER_HOST
            assert job["options"].get("job-originating-host-name") == link.workstation_ip
            assert job["state"] == "held"
            assert not [j for j in _jobs_of(cluster, "alice") if j["title"] in (claimed.name, "clear", "wrong")]
        # cupsd holds what the role asked for, on the queue and on each member of a class.
        for name in [QUEUE, *members]:
            now = server_conn.getPrinterAttributes(name, requested_attributes=["printer-is-shared",
                                                                               "printer-op-policy"])
            assert now["printer-is-shared"] is (role == "print-server"), name
            assert now["printer-op-policy"] == ("pullprint" if role == "print-server" else "default"), name
    finally:
        with contextlib.suppress(cups.IPPError):
            ws_conn.cancelAllJobs(name=forward, purge_jobs=True)
        with contextlib.suppress(cups.IPPError):
            ws_conn.deletePrinter(forward)
        _remove(print_server)

    # The operator is told which role was used, whether the queue is shared and who may print.
    told = "(raw, shared: other hosts may print to it" if role == "print-server" else \
        "(raw, not shared: only this host may print to it"
    assert f"role {role}: " in out and told in out, out
    assert ("needs an authenticated user" in out) is (role == "print-server"), out


def test_a_local_user_prints_as_themselves_through_peercred(
        cluster: LocalCluster, print_server: PrivateCupsd, account: Account, token_file: Path,
        base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _install(print_server, cluster, token_file, "print-server", 1)
    capsys.readouterr()
    assert queue_main(["status", "--name", QUEUE, "--cups-server", str(print_server.socket_path)]) == 0
    status = capsys.readouterr()
    assert "policy pullprint" in status.out and "warning" not in status.err, status
    folder = base / "peercred"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    doc = folder / "local-report.ps"
    doc.write_bytes(b"%!PS\n" + os.urandom(20_000) + b"\n%%EOF\n")
    doc.chmod(0o644)
    env = {**os.environ, "CUPS_SERVER": str(print_server.socket_path)}
    try:
        # lp as that user on cupsd's domain socket: known by its uid, no password asked.
        done = subprocess.run(["runuser", "-u", account.name, "--", "lp", "-d", QUEUE, str(doc)], env=env,
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0, done.stderr
        job = _arrived(cluster, account.name, doc.name, print_server)
        assert job["owner"] == account.name and job["origin_host"] == PRINT_SERVER_HOST
        # The same user claiming to be alice is asked for alice's password, which it does not have.
        claimed = folder / "claimed-local.ps"
        shutil.copyfile(doc, claimed)
        claimed.chmod(0o644)
        done = subprocess.run(["runuser", "-u", account.name, "--", "lp", "-U", "alice", "-d", QUEUE, str(claimed)],
                              env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                              check=False)
        assert done.returncode != 0 and "Unauthorized" in done.stderr, (done.stdout, done.stderr)
        time.sleep(1)
        assert not [j for j in _jobs_of(cluster, "alice") if j["title"] == claimed.name]
        assert not [j for j in _jobs_of(cluster, account.name) if j["title"] == claimed.name]
    finally:
        _remove(print_server)


def test_the_owner_the_backend_sends_is_the_user_cupsd_authenticated(
        link: Link, print_server: PrivateCupsd, account: Account, collector, base: Path) -> None:
    """The same policy in front of a recording collector: what the backend sends, header by header."""
    token = base / "fake-token"
    token.write_text("print-server-credential")
    assert queue_main(["install", "--name", QUEUE, "--uri", collector.uri, "--cups-server",
                       str(print_server.socket_path), "--backend-dir", str(print_server.backend_dir),
                       "--server-root", str(print_server.server_root), "--token-file", str(token),
                       "--role", "print-server", "--skip-crash-probe"]) == 0
    folder = base / "owner"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    doc = folder / "owner-check.ps"
    doc.write_bytes(b"%!PS\n" + os.urandom(5000) + b"\n%%EOF\n")
    doc.chmod(0o644)
    url = f"ipp://{link.server_ip}:{print_server.port}/printers/{QUEUE}"
    try:
        # Refused before cupsd queues anything: nothing reaches the collector.
        assert _netns_ipp(link, url, "alice", doc, title="plain")["http"] == 426
        assert _netns_ipp(link, url.replace("ipp://", "ipps://", 1), "alice", doc, title="anon")["http"] == 401
        answer = _netns_ipp(link, url.replace("ipp://", "ipps://", 1), "alice", doc, title="remote-basic",
                            auth=account)
        assert answer["http"] == 200 and answer["job_id"], answer
        [remote] = collector.wait_for(1)
        assert remote.headers["X-Pullprint-Owner"] == account.name
        assert remote.headers["X-Pullprint-Title"] == "remote-basic"
        assert remote.headers["Authorization"] == "Bearer print-server-credential"
        env = {**os.environ, "CUPS_SERVER": str(print_server.socket_path)}
        done = subprocess.run(["runuser", "-u", account.name, "--", "lp", "-d", QUEUE, "-t", "local-peercred",
                               str(doc)], env=env, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0, done.stderr
        received = collector.wait_for(2)
        assert [r.headers["X-Pullprint-Owner"] for r in received] == [account.name, account.name]
        assert received[1].headers["X-Pullprint-Title"] == "local-peercred"
        time.sleep(1)
        assert len(collector.received) == 2, [r.headers for r in collector.received]
    finally:
        _remove(print_server)


def test_a_phone_prints_over_ipps_with_ipptool_as_the_user_it_authenticated(
        link: Link, cluster: LocalCluster, print_server: PrivateCupsd, account: Account, token_file: Path,
        tmp_path: Path) -> None:
    """ipptool as a phone (IPP Everywhere / AirPrint clients do the same two things): it asks the shared
    queue what it takes, then sends a document over IPPS with Basic authentication while claiming to
    be alice. The job is held under the account cupsd authenticated; without a password nothing is
    taken. The phone's PWG raster is released as PDF, which any printer of the cluster takes."""
    _install(print_server, cluster, token_file, "print-server", 1)
    folder = tmp_path / "phone"
    folder.mkdir()
    folder.chmod(0o755)
    pdf = folder / "boarding-pass.pdf"
    pdf.write_bytes(ONE_PAGE_PDF + b"% " + secrets.token_hex(16).encode() + b"\n")
    raster = folder / "photo.pwg"  # a page as a phone rasterises it (IPP Everywhere's PWG raster)
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pwgraster", "-r100",
                    f"-sOutputFile={raster}", str(pdf)], check=True, capture_output=True, timeout=60)
    for path in (pdf, raster):
        path.chmod(0o644)
    script = Path(__file__).with_name("phone.test")

    def phone(userinfo: str, document: Path, title: str, kind: str) -> subprocess.CompletedProcess[str]:
        url = f"ipps://{userinfo}{link.server_ip}:{print_server.port}/printers/{QUEUE}"
        return subprocess.run(["ip", "netns", "exec", link.netns, "ipptool", "-tv", "-T", "20", "-f", str(document),
                               "-d", "user=alice", "-d", f"job={title}", "-d", f"format={kind}", url, str(script)],
                              capture_output=True, text=True, timeout=60, check=False, env={"HOME": str(folder)})
    sign_in = f"{account.name}:{account.password}@"
    try:
        for document, title, kind in ((pdf, "phone-boarding-pass", "application/pdf"),
                                      (raster, "phone-photo", "image/pwg-raster")):
            done = phone(sign_in, document, title, kind)
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        held = {title: _arrived(cluster, account.name, title, print_server)
                for title in ("phone-boarding-pass", "phone-photo")}
        assert all(job["owner"] == account.name and job["state"] == "held" for job in held.values())
        assert held["phone-boarding-pass"]["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
        assert not [j for j in _jobs_of(cluster, "alice") if j["title"].startswith("phone-")]
        # No password, or a wrong one: the Print-Job is refused and nothing is held.
        for userinfo, title in (("", "phone-anonymous"), (f"{account.name}:wrong-password@", "phone-wrong")):
            refused = phone(userinfo, pdf, title, "application/pdf")
            assert refused.returncode != 0 and "Print-Job" in refused.stdout, refused.stdout[-3000:]
        time.sleep(1)
        titles = {j["title"] for owner in (account.name, "alice") for j in _jobs_of(cluster, owner)}
        assert not titles & {"phone-anonymous", "phone-wrong"}

        # At the printer: the account as a pullprint user logs in with its PIN and prints both.
        assert analyst_call(cluster, "POST", "/users", json={"name": account.name, "pin": "482913"}).status_code \
            in (200, 201)
        printer = cluster.printers[0]
        session = login(cluster, printer["id"], user=account.name, pin="482913").json()
        answer = release(cluster, session["session"], {"jobs": [j["id"] for j in held.values()]}).json()
        assert [r["status"] for r in answer["results"]] == ["printed", "printed"], answer
        arrived = [p.read_bytes() for p in Path(printer["sink_dir"]).iterdir() if p.suffix != ".json"]
        assert pdf.read_bytes() in arrived
        assert any(doc.startswith(b"%PDF-") and doc != pdf.read_bytes() for doc in arrived)  # the raster, as PDF
        assert not any(doc.startswith(b"RaS2") for doc in arrived)
    finally:
        _remove(print_server)
