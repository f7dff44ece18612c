"""The backend's contract with cupsd (backend(7)) and with the collector, against a fake collector."""

from __future__ import annotations

import io
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cups_backend import BackendExit, main
from cups_backend.install import write_credentials

TOKEN = "tok-5ecret-value-never-logged"
UUID = "urn:uuid:0b0f2b5c-1f0e-4c1f-9a55-2f6c0c3d1e77"
OPTIONS = (f"finishings=3 sides=two-sided-long-edge print-color-mode=monochrome job-uuid={UUID} "
           "job-originating-host-name=ws17.example.org time-at-creation=1795588617 "
           r"document-name-supplied=Quarterly\ report.pdf")


@pytest.fixture
def env(tmp_path: Path, collector) -> dict[str, str]:
    server_root = tmp_path / "etc"
    write_credentials(server_root, TOKEN)
    spool_tmp = tmp_path / "spooltmp"
    spool_tmp.mkdir()
    return {
        "DEVICE_URI": collector.uri,
        "CUPS_SERVERROOT": str(server_root),
        "TMPDIR": str(spool_tmp),
        "CONTENT_TYPE": "application/pdf",
        "PRINTER": "SecurePrint",
        "USER": "root",  # what cupsd really sets; the owner must not come from here
        "PULLPRINT_BACKEND_RETRY_DELAYS": "0.01,0.01,0.01",
        "PULLPRINT_BACKEND_CONNECT_TIMEOUT": "2",
        "PULLPRINT_BACKEND_IO_TIMEOUT": "5",
    }


def run(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env, io.BytesIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "d00042-001"
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(300_000) + b"\n%%EOF\n")
    return path


def test_discovery_lists_both_schemes_and_exits_ok() -> None:
    out = io.StringIO()
    assert main(["/usr/lib/cups/backend/pullprint"], {}, stdout=out, stderr=io.StringIO()) == BackendExit.OK
    assert out.getvalue() == 'network pullprint "Unknown" "pullprint secure release cluster"\n'
    out = io.StringIO()
    assert main(["pullprints"], {}, stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue().startswith('network pullprints "Unknown"')


@pytest.mark.parametrize("argc", [2, 5, 8])
def test_wrong_argument_count_prints_usage_and_fails(argc: int, env) -> None:
    code, _, err = run(["pullprint", *["x"] * (argc - 1)], env)
    assert code == BackendExit.FAILED
    assert "Usage:" in err


def test_seven_arguments_stream_the_file_with_the_job_metadata(collector, env, document) -> None:
    env = {**env, "USER": "mallory"}
    code, _, err = run(["pullprint", "42", "alice", "Quarterly report", "3", OPTIONS, str(document)], env)
    assert code == BackendExit.OK, err
    [got] = collector.received
    assert got.path == "/api/v1/jobs"
    assert got.body == document.read_bytes()
    assert got.headers["Transfer-Encoding"] == "chunked"
    headers = got.headers
    assert headers["X-Pullprint-Owner"] == "alice"  # argv[2], not $USER
    assert headers["X-Pullprint-Copies"] == "3"  # raw queue: the cluster makes the copies
    assert headers["Idempotency-Key"] == UUID
    assert headers["X-Pullprint-Title"] == "Quarterly%20report"
    assert headers["X-Pullprint-Origin-Host"] == "ws17.example.org"
    assert headers["X-Pullprint-Cups-Job-Id"] == "42"
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    from pullprint.wire import JobSubmission

    parsed = JobSubmission.from_headers(headers)
    assert parsed.options["sides"] == "two-sided-long-edge"
    assert parsed.options["print-color-mode"] == "monochrome"
    assert parsed.options["document-name-supplied"] == "Quarterly report.pdf"
    assert "INFO: Job held for release as job-1" in err


def test_six_arguments_read_stdin_send_one_copy_and_leave_no_temp_file(collector, env, document) -> None:
    data = document.read_bytes()
    env = {**env, "FINAL_CONTENT_TYPE": "application/vnd.cups-postscript"}
    code, _, err = run(["pullprint", "43", "bob", "t", "3", OPTIONS], env, stdin=data)
    assert code == BackendExit.OK, err
    [got] = collector.received
    assert got.body == data
    assert got.headers["X-Pullprint-Copies"] == "1"  # the filters already made the copies
    assert got.headers["X-Pullprint-Owner"] == "bob"
    assert got.headers["Content-Type"] == "application/vnd.cups-postscript"
    assert os.listdir(env["TMPDIR"]) == []


def test_without_job_uuid_the_key_is_host_printer_job(collector, env, document) -> None:
    code, _, _ = run(["pullprint", "44", "alice", "t", "1", "sides=one-sided", str(document)], env)
    assert code == 0
    assert collector.received[0].headers["Idempotency-Key"] == f"{socket.gethostname()}:SecurePrint:44"


@pytest.mark.parametrize(("status", "expected"), [
    (201, BackendExit.OK),
    (200, BackendExit.OK),
    (400, BackendExit.CANCEL),
    (413, BackendExit.CANCEL),
    (422, BackendExit.CANCEL),
    (401, BackendExit.HOLD),
    (403, BackendExit.HOLD),
    (503, BackendExit.RETRY),
    (500, BackendExit.RETRY),
])
def test_exit_code_follows_the_collector_answer(status, expected, collector, env, document) -> None:
    collector.answers = [(status, {"id": "j9"} if status < 300 else
                          {"error": "nope", "message": f"the collector says {status}"})]
    code, _, err = run(["pullprint", "45", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == expected
    if status >= 400:
        assert "ERROR: " in err
    if 400 <= status < 500:
        assert f"the collector says {status}" in err
        assert len(collector.received) == 1  # refused jobs are not retried
    if status >= 500:
        assert len(collector.received) == 4  # bounded retries, then cupsd holds the job


@pytest.mark.parametrize(("status", "body", "expected", "line"), [
    (401, {"error": "unknown-submitter", "message": "this host's submit credential is not valid"}, BackendExit.HOLD,
     "ERROR: This print server's pullprint credential was refused (this host's submit credential is not valid). "
     "Ask the pullprint administrator for one (pullprint submitter add HOST), install it with pullprint queue "
     "install --token-file, then release the job."),
    (400, {"error": "too-many-copies", "message": "999 copies asked; at most 99 copies of one job may be printed "
           "here"}, BackendExit.CANCEL,
     "ERROR: The pullprint cluster refused this job: 999 copies asked; at most 99 copies of one job may be printed "
     "here"),
    (409, {"error": "quota-exceeded", "message": "alice already has 200 held jobs and may hold at most 200; print "
           "or delete some at a printer, then print this again", "limit": "max_held_jobs_per_user"},
     BackendExit.CANCEL,
     "ERROR: The pullprint cluster refused this job: alice already has 200 held jobs and may hold at most 200; "
     "print or delete some at a printer, then print this again"),
])
def test_a_refusal_is_one_clear_error_line_the_last_the_user_sees(status, body, expected, line, collector, env,
                                                                   document) -> None:
    collector.answers = [(status, body)]
    code, _, err = run(["pullprint", "45", "alice", "t", "999", OPTIONS, str(document)], env)
    assert code == expected
    shown = [entry for entry in err.splitlines() if not entry.startswith("DEBUG: ")]
    assert shown[-1] == line  # cupsd shows the last message as the job's printer-state-message
    assert len(collector.received) == 1  # never retried here
    assert collector.received[0].headers["X-Pullprint-Copies"] == "999"  # the cluster, not the backend, decides


def test_a_503_then_201_is_retried_and_succeeds_replaying_stdin(collector, env, document) -> None:
    collector.answers = [(503, {"error": "busy"}), (503, {"error": "busy"}), (201, {"id": "j2"})]
    data = document.read_bytes()
    code, _, err = run(["pullprint", "46", "alice", "t", "1", OPTIONS], env, stdin=data)
    assert code == BackendExit.OK, err
    assert [r.body == data for r in collector.received] == [True, True, True]
    assert {r.headers["Idempotency-Key"] for r in collector.received} == {UUID}


def test_connection_refused_is_retried_then_held_for_later(env, document) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    env = {**env, "DEVICE_URI": f"pullprint://127.0.0.1:{port}/"}
    started = time.monotonic()
    code, _, err = run(["pullprint", "47", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == BackendExit.RETRY
    assert time.monotonic() - started < 5
    assert err.count("STATE: +connecting-to-device") == 4
    assert err.count("STATE: -connecting-to-device") == 4
    assert "ERROR: Cannot reach the pullprint cluster" in err


def test_the_retry_budget_bounds_the_time_spent(env, document) -> None:
    env = {**env, "DEVICE_URI": "pullprint://127.0.0.1:9/", "PULLPRINT_BACKEND_RETRY_DELAYS": "0.3,0.3,5",
           "PULLPRINT_BACKEND_RETRY_BUDGET": "1"}
    started = time.monotonic()
    code, _, err = run(["pullprint", "47", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == BackendExit.RETRY
    assert time.monotonic() - started < 2
    assert err.count("STATE: +connecting-to-device") == 3


def test_missing_credentials_hold_the_job(env, document, tmp_path) -> None:
    env = {**env, "CUPS_SERVERROOT": str(tmp_path / "nowhere")}
    code, _, err = run(["pullprint", "48", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == BackendExit.HOLD
    assert "ERROR: pullprint queue misconfigured: credentials file" in err


def test_credentials_never_in_messages_and_uri_userinfo_ignored(collector, env, document) -> None:
    env = {**env, "DEVICE_URI": f"pullprint://svc:other-secret@127.0.0.1:{collector.port}/"}
    collector.answers = [(503, {"message": f"echo {TOKEN}"}), (401, {"message": f"bad token {TOKEN}"})]
    code, _, err = run(["pullprint", "49", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == BackendExit.HOLD
    assert TOKEN not in err
    assert "other-secret" not in err
    assert "WARNING: credentials in the device URI are ignored" in err
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in collector.received)
    conf = Path(env["CUPS_SERVERROOT"]) / "pullprint" / "backend.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    import grp

    assert conf.stat().st_gid == grp.getgrnam("lp").gr_gid


def test_key_value_credentials_file_is_accepted(collector, env, document) -> None:
    conf = Path(env["CUPS_SERVERROOT"]) / "pullprint" / "backend.conf"
    conf.write_text(f"# pullprint backend\ntoken = {TOKEN}\n")
    code, _, _ = run(["pullprint", "50", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == 0
    assert collector.received[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_sigterm_stops_the_upload_at_once_and_exits_ok(collector, env, tmp_path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    collector.read_delay = 0.2  # a slow collector: the upload takes far longer than the test
    code = "import sys; from cups_backend import main; sys.exit(main(sys.argv))"
    proc = subprocess.Popen([sys.executable, "-c", code, "51", "alice", "t", "1", OPTIONS, str(big)],
                            env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    assert collector.arrived.wait(10)
    time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=5)
    assert time.monotonic() - started < 2
    assert proc.returncode == BackendExit.OK
    assert "Job canceled; upload stopped" in err
    collector.read_delay = 0  # let the collector drain what was in flight and see the end
    deadline = time.monotonic() + 10
    while not collector.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert collector.received and not collector.received[0].complete  # the collector sees a truncated upload


def _tls_material(tmp_path: Path) -> tuple[Path, Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pullprint test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lb")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def test_pullprints_verifies_the_collector_certificate(collector, env, document, tmp_path) -> None:
    ca_path, cert_path, key_path = _tls_material(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    collector.server.socket = context.wrap_socket(collector.server.socket, server_side=True)
    env = {**env, "DEVICE_URI": f"pullprints://127.0.0.1:{collector.port}/"}
    # Without the CA the certificate cannot be verified: nothing is sent, the job waits for a retry.
    code, _, err = run(["pullprint", "52", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == BackendExit.RETRY
    assert "CERTIFICATE_VERIFY_FAILED" in err
    assert collector.received == []
    write_credentials(Path(env["CUPS_SERVERROOT"]), TOKEN, str(ca_path))
    code, _, err = run(["pullprint", "52", "alice", "t", "1", OPTIONS, str(document)], env)
    assert code == BackendExit.OK, err
    assert collector.received[0].body == document.read_bytes()


def test_token_is_not_in_argv_of_the_installed_backend(tmp_path) -> None:
    from cups_backend.install import backend_script, install_backend

    [first, second] = install_backend(tmp_path / "backend")
    assert first.read_text() == second.read_text() == backend_script()
    assert first.read_text().startswith(f"#!{sys.executable} -IS\n")
    st = first.stat()
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert st.st_mode & 0o777 in (0o755, 0o700)
    assert not st.st_mode & 0o022
    out = subprocess.run([str(first)], capture_output=True, text=True, timeout=20, cwd="/")
    assert out.returncode == 0
    assert out.stdout.startswith('network pullprint "Unknown"')

