"""A callee SIGKILLed after it got a request, on a kept-open mutual-TLS connection, against a real
gunicorn: the caller must learn that the request may have been acted on (`maybe_acted`), so a direct
print is never sent to a second holder (a duplicate). Only a request that certainly never left may be
sent elsewhere: a refused connection, or a certificate refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nodeserver.client import NodeClient, Unreachable
from nodeserver.command import gunicorn_command
from pullprint import daemons
from pullprint.pki import Authority, identity_dns
from pullprint.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[2]
CALLEE = identity_dns("collector", "c2")


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Authority, TlsFiles, TlsFiles]:
    authority = Authority(tmp_path / "ca")
    authority.init()
    ca_file = str(authority.cert_file)
    server = TlsFiles(ca_file, *(str(p) for p in authority.issue("collector", "c2", ["127.0.0.1"])))
    client = TlsFiles(ca_file, *(str(p) for p in authority.issue("collector", "c1", ["127.0.0.1"])))
    return authority, server, client


def _serve(tmp_path: Path, tls: TlsFiles) -> tuple[daemons.Daemon, str]:
    port = daemons.free_port()
    argv, env = gunicorn_command("tests.nodeserver.hang_app:app", bind=f"127.0.0.1:{port}", workers=1,
                                 threads=4, tls=tls, extra=("--chdir", str(ROOT)))
    server = daemons.start("gunicorn", argv, log_path=tmp_path / "gunicorn.log",
                           env={"PATH": "/usr/bin:/bin", "PULLPRINT_TEST_SEEN": str(tmp_path / "seen"), **env},
                           ready=lambda: daemons.port_open("127.0.0.1", port))
    return server, f"https://127.0.0.1:{port}"


def test_a_callee_killed_mid_call_on_a_kept_open_connection_may_have_acted(ca, tmp_path: Path) -> None:
    _, server_tls, client_tls = ca
    server, url = _serve(tmp_path, server_tls)
    client = NodeClient(client_tls, timeout=20.0)
    try:
        assert client.json("GET", f"{url}/ok", identity=CALLEE) == {}  # the connection stays open for the next
        outcome: dict[str, Unreachable] = {}

        def call() -> None:
            try:
                client.request("POST", f"{url}/hang", identity=CALLEE, json={})
            except Unreachable as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        daemons.wait_until(lambda: (tmp_path / "seen").exists(), 10, "the callee to get the request")
        server.kill()  # SIGKILL: the kernel closes the TLS connection without a close_notify
        caller.join(15)
        assert not caller.is_alive()
    finally:
        server.stop()
    assert "error" in outcome
    assert outcome["error"].maybe_acted is True, outcome["error"].message


def test_a_refused_connection_and_a_refused_certificate_certainly_never_arrived(ca, tmp_path: Path) -> None:
    authority, server_tls, client_tls = ca
    server, url = _serve(tmp_path, server_tls)
    try:
        # The server's certificate names c2; a call meant for c1 sends nothing.
        with pytest.raises(Unreachable) as wrong_callee:
            NodeClient(client_tls, 5.0).request("GET", f"{url}/hang", identity=identity_dns("collector", "c1"))
        assert wrong_callee.value.maybe_acted is False
        # Our certificate is from a CA the callee does not trust: its TLS layer refuses us.
        stranger = Authority(tmp_path / "other-ca")
        stranger.init()
        foreign = TlsFiles(server_tls.ca_file, *(str(p) for p in stranger.issue("collector", "c1", ["127.0.0.1"])))
        with pytest.raises(Unreachable) as refused_cert:
            NodeClient(foreign, 5.0).request("GET", f"{url}/hang", identity=CALLEE)
        assert refused_cert.value.maybe_acted is False
        assert not (tmp_path / "seen").exists()  # neither reached the app
    finally:
        server.stop()
    with pytest.raises(Unreachable) as nobody:
        NodeClient(client_tls, 5.0).request("GET", f"{url}/ok", identity=CALLEE)
    assert nobody.value.maybe_acted is False


def test_a_tls_error_other_than_a_refused_certificate_may_have_acted() -> None:
    """The chain urllib3 builds for a TLS error while reading an answer (an EOF inside a record, say):
    it may come after the request went out, so it is not 'never sent'."""
    import ssl

    import requests
    import urllib3

    from nodeserver.client import _never_sent

    def chain(inner: Exception) -> requests.exceptions.SSLError:
        reason = urllib3.exceptions.SSLError(inner)
        return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/x", reason))  # type: ignore[arg-type]

    eof = ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:992)")
    assert not _never_sent(chain(eof))
    refused = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2578)")
    assert _never_sent(chain(refused))
