"""The backend under a real private cupsd: `lp` on the SecurePrint queue reaches the (fake) collector."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

cups = pytest.importorskip("cups")

from cups_backend import install  # noqa: E402
from cups_backend.cli import main as queue_main  # noqa: E402
from pullprint.cupsd import PrivateCupsd  # noqa: E402
from pullprint.daemons import free_port  # noqa: E402

pytestmark = pytest.mark.integration
TOKEN = "integration-token-0123456789"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def cupsd(tmp_path_factory) -> Iterator[PrivateCupsd]:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pullprint-cupsd-"))
    base.chmod(0o755)  # the lp user must reach the spool
    daemon = PrivateCupsd.start(base / "cups", retry_interval=300)
    yield daemon
    daemon.stop()
    subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.fixture
def conn(cupsd: PrivateCupsd):
    return cups.Connection(host="127.0.0.1", port=cupsd.port)


def make_queue(cupsd: PrivateCupsd, uri: str, tmp_path: Path) -> str:
    name = f"SecurePrint{next(_names)}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    code = queue_main(["install", "--name", name, "--uri", uri, "--cups-server", cupsd.server,
                       "--backend-dir", str(cupsd.backend_dir), "--server-root", str(cupsd.server_root),
                       "--token-file", str(token_file)])
    assert code == 0
    # Quick retries so a "collector down" test does not take 20 s (cupsd gives the backend a fixed
    # environment, so the tuning lives in the credentials file too).
    conf = cupsd.server_root / "pullprint" / "backend.conf"
    conf.write_text(f"token = {TOKEN}\nretry_delays = 0.1,0.1,0.1\nconnect_timeout = 2\n")
    return name


def lp(cupsd: PrivateCupsd, queue: str, path: Path, *options: str, user: str = "alice") -> int:
    out = subprocess.run(["lp", "-U", user, "-d", queue, *options, str(path)], env=cupsd.env(),
                         capture_output=True, text=True, check=True)
    # "request id is SecurePrint1-3 (1 file(s))"
    return int(out.stdout.split()[3].rsplit("-", 1)[1])


def wait_state(conn, job_id: int, states: set[int], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        attrs = conn.getJobAttributes(job_id, requested_attributes=[
            "job-state", "job-state-reasons", "job-printer-state-message", "job-uuid",
            "job-originating-user-name"])
        if attrs["job-state"] in states or time.monotonic() > deadline:
            return attrs
        time.sleep(0.1)


def test_lp_job_reaches_the_collector_with_owner_options_and_uuid(cupsd, conn, collector, tmp_path) -> None:
    queue = make_queue(cupsd, collector.uri, tmp_path)
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n")
    job_id = lp(cupsd, queue, doc, "-o", "sides=two-sided-long-edge", "-n", "2")
    attrs = wait_state(conn, job_id, {cups.IPP_JOB_COMPLETED, cups.IPP_JOB_ABORTED, cups.IPP_JOB_CANCELED})
    assert attrs["job-state"] == cups.IPP_JOB_COMPLETED, (attrs, cupsd.log_tail())
    [got] = collector.received
    assert got.body == doc.read_bytes()
    assert got.headers["X-Pullprint-Owner"] == "alice"
    assert got.headers["Idempotency-Key"] == attrs["job-uuid"]
    assert got.headers["X-Pullprint-Copies"] == "2"
    assert "sides=two-sided-long-edge" in got.headers["X-Pullprint-Options"]
    assert got.headers["Authorization"] == f"Bearer {TOKEN}"
    entry = conn.getPrinters()[queue]
    assert TOKEN not in entry["device-uri"]
    assert TOKEN not in cupsd.error_log.read_text()


def test_a_refused_job_is_canceled_not_retried(cupsd, conn, collector, tmp_path) -> None:
    collector.answers = [(413, {"error": "too-large", "message": "document larger than 100 MB"})]
    queue = make_queue(cupsd, collector.uri, tmp_path)
    doc = tmp_path / "big.ps"
    doc.write_bytes(b"%!PS\n" * 1000)
    job_id = lp(cupsd, queue, doc)
    attrs = wait_state(conn, job_id, {cups.IPP_JOB_CANCELED, cups.IPP_JOB_ABORTED, cups.IPP_JOB_COMPLETED})
    assert attrs["job-state"] in (cups.IPP_JOB_CANCELED, cups.IPP_JOB_ABORTED), attrs
    time.sleep(0.5)
    assert len(collector.received) == 1
    assert "document larger than 100 MB" in conn.getPrinters()[queue]["printer-state-message"]


def test_collector_down_holds_the_job_for_a_later_retry(cupsd, conn, tmp_path) -> None:
    queue = make_queue(cupsd, f"pullprint://127.0.0.1:{free_port()}/", tmp_path)
    doc = tmp_path / "memo.txt"
    doc.write_text("nothing may be lost\n")
    job_id = lp(cupsd, queue, doc)
    attrs = wait_state(conn, job_id, {cups.IPP_JOB_HELD, cups.IPP_JOB_COMPLETED, cups.IPP_JOB_CANCELED,
                                      cups.IPP_JOB_ABORTED})
    assert attrs["job-state"] == cups.IPP_JOB_HELD, attrs
    assert attrs["job-originating-user-name"] == "alice"
    conn.cancelJob(job_id, purge_job=True)


def test_bad_token_holds_the_job(cupsd, conn, collector, tmp_path) -> None:
    collector.answers = [(401, {"error": "unauthorized", "message": "unknown submit token"})]
    queue = make_queue(cupsd, collector.uri, tmp_path)
    doc = tmp_path / "a.txt"
    doc.write_text("hello\n")
    job_id = lp(cupsd, queue, doc)
    attrs = wait_state(conn, job_id, {cups.IPP_JOB_HELD, cups.IPP_JOB_COMPLETED, cups.IPP_JOB_CANCELED})
    assert attrs["job-state"] == cups.IPP_JOB_HELD, attrs
    conn.cancelJob(job_id, purge_job=True)


def test_queue_is_raw_unshared_and_status_and_remove_work(cupsd, conn, collector, tmp_path, capsys) -> None:
    queue = make_queue(cupsd, collector.uri, tmp_path)
    attrs = conn.getPrinterAttributes(queue, requested_attributes=[
        "printer-is-accepting-jobs", "printer-is-shared", "printer-error-policy", "printer-make-and-model"])
    assert attrs["printer-is-accepting-jobs"] is True
    assert attrs["printer-is-shared"] is False
    assert attrs["printer-error-policy"] == "retry-job"
    assert attrs["printer-make-and-model"] == "Local Raw Printer"
    assert queue_main(["status", "--name", queue, "--cups-server", cupsd.server]) == 0
    assert "accepting jobs" in capsys.readouterr().out
    assert queue_main(["remove", "--name", queue, "--cups-server", cupsd.server]) == 0
    assert queue not in conn.getPrinters()


def test_a_name_cupsd_rejects_is_an_error_not_silence(cupsd, conn) -> None:
    with pytest.raises(ValueError, match="did not create the queue"):
        install.create_queue(conn, "bad name!", "pullprint://127.0.0.1:1/")


def test_private_cupsd_backends_are_secure(cupsd) -> None:
    for name in ("pullprint", "pullprints"):
        st = (cupsd.backend_dir / name).stat()
        assert (st.st_uid, st.st_gid) == (0, 0) and not st.st_mode & 0o022
    assert not cupsd.backend_dir.stat().st_mode & 0o002
    for name in ("ipp", "socket", "lpd"):
        assert (cupsd.backend_dir / name).resolve().exists()
    out = subprocess.run(["lpinfo", "-v"], env=cupsd.env(), capture_output=True, text=True, timeout=60)
    assert "network pullprint" in out.stdout


def test_canceling_a_job_mid_upload_stops_the_backend(cupsd, conn, collector, tmp_path) -> None:
    collector.read_delay = 0.2  # a slow collector keeps the upload going
    queue = make_queue(cupsd, collector.uri, tmp_path)
    doc = tmp_path / "big.bin"
    doc.write_bytes(os.urandom(8 * 1024 * 1024))
    job_id = lp(cupsd, queue, doc, "-o", "document-format=application/octet-stream")
    assert collector.arrived.wait(20), cupsd.log_tail()
    conn.cancelJob(job_id)
    attrs = wait_state(conn, job_id, {cups.IPP_JOB_CANCELED, cups.IPP_JOB_COMPLETED, cups.IPP_JOB_ABORTED})
    assert attrs["job-state"] == cups.IPP_JOB_CANCELED
    collector.read_delay = 0
    deadline = time.monotonic() + 15
    while not collector.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert collector.received and not collector.received[0].complete
    # The queue is not stopped by the cancel: the next job goes through.
    small = tmp_path / "next.txt"
    small.write_text("next\n")
    next_id = lp(cupsd, queue, small)
    assert wait_state(conn, next_id, {cups.IPP_JOB_COMPLETED, cups.IPP_JOB_ABORTED})["job-state"] == \
        cups.IPP_JOB_COMPLETED


def test_parallel_queue_is_a_class_of_queues_that_delivers_every_job(cupsd, conn, collector, tmp_path) -> None:
    name = f"SecurePrintClass{next(_names)}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert queue_main(["install", "--name", name, "--uri", collector.uri, "--cups-server", cupsd.server,
                       "--backend-dir", str(cupsd.backend_dir), "--server-root", str(cupsd.server_root),
                       "--token-file", str(token_file), "--parallel", "3"]) == 0
    # Installing again (the demo started a second time) changes nothing and succeeds.
    assert queue_main(["install", "--name", name, "--uri", collector.uri, "--cups-server", cupsd.server,
                       "--backend-dir", str(cupsd.backend_dir), "--server-root", str(cupsd.server_root),
                       "--token-file", str(token_file), "--parallel", "3"]) == 0
    assert sorted(conn.getClasses()[name]) == [f"{name}-1", f"{name}-2", f"{name}-3"]
    documents = []
    for n in range(6):
        doc = tmp_path / f"doc{n}.ps"
        doc.write_bytes(b"%!PS\n" + os.urandom(20_000))
        documents.append(doc.read_bytes())
        lp(cupsd, name, doc, user="bob")
    deadline = time.monotonic() + 30
    while len(collector.received) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(r.body for r in collector.received) == sorted(documents)
    assert {r.headers["X-Pullprint-Owner"] for r in collector.received} == {"bob"}
    assert queue_main(["remove", "--name", name, "--cups-server", cupsd.server]) == 0
    assert name not in conn.getClasses() and f"{name}-1" not in conn.getPrinters()
