"""The rendered HAProxy config: accepted by the real haproxy -c, and refused inputs say why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lb import haproxy
from pullprint.errors import PullprintError

CLUSTER = {"collectors": [{"id": "c1", "url": "http://127.0.0.1:18081"},
                          {"id": "c2", "url": "http://127.0.0.1:18082"},
                          {"id": "c3", "url": "http://10.0.0.3:8081"}]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return path


def test_rendered_config_passes_haproxy_check_without_warnings(tmp_path: Path) -> None:
    settings = haproxy.LbSettings(bind="127.0.0.1:18080", socket_path=str(tmp_path / "admin.sock"),
                                  stats_bind="127.0.0.1:18404")
    text = haproxy.render(CLUSTER, settings)
    haproxy.check(_write(tmp_path, text), strict=True)
    # The behaviours the cluster's guarantees rest on are really in the config.
    for line in ("retry-on conn-failure empty-response", "option redispatch 1", "option forwardfor",
                 "option httpchk GET /readyz", "http-request disable-l7-retry unless METH_GET || METH_HEAD",
                 "default-server inter 300ms fastinter 200ms downinter 500ms fall 2 rise 2",
                 "timeout check 500ms", "timeout server 180s", "timeout http-request 10s",
                 "server c3 10.0.0.3:8081 check", "level admin", "log stdout",
                 "http-request use-service prometheus-exporter if { path /metrics }"):
        assert line in text
    assert "slowstart" not in text.replace("No slowstart", "")


def test_tls_frontend_passes_haproxy_check(tmp_path: Path) -> None:
    key, crt = tmp_path / "lb.key", tmp_path / "lb.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lb",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    pem = tmp_path / "lb.pem"
    pem.write_bytes(crt.read_bytes() + key.read_bytes())
    settings = haproxy.LbSettings(socket_path=str(tmp_path / "admin.sock"), tls_cert=str(pem))
    text = haproxy.render(CLUSTER, settings)
    assert f"ssl crt {pem}" in text
    haproxy.check(_write(tmp_path, text), strict=True)


def test_check_raises_with_haproxys_own_message(tmp_path: Path) -> None:
    text = haproxy.render(CLUSTER, haproxy.LbSettings(socket_path=str(tmp_path / "a.sock")))
    path = _write(tmp_path, text.replace("balance leastconn", "balance sometimes"))
    with pytest.raises(PullprintError) as caught:
        haproxy.check(path)
    assert caught.value.code == "bad-lb-config"
    # HAProxy's own words: which line, and what it expected instead.
    assert "balance only supports" in caught.value.message
    assert "haproxy.cfg:" in caught.value.message
    assert "[NOTICE]" not in caught.value.message


@pytest.mark.parametrize(("cluster", "words"), [
    ({}, "no collectors"),
    ({"collectors": [{"id": "c 1", "url": "http://127.0.0.1:1"}]}, "not a valid HAProxy server name"),
    ({"collectors": [{"id": "c1", "url": "http://127.0.0.1:1"}, {"id": "c1", "url": "http://127.0.0.1:2"}]},
     "unique"),
    ({"collectors": [{"id": "c1", "url": "127.0.0.1:8081"}]}, "http(s)://host:port"),
    ({"collectors": [{"id": "c1", "url": "https://c1.example.org:8443"}]}, "backend_ca_file"),
])
def test_render_refuses_a_bad_cluster_description(cluster: dict[str, object], words: str) -> None:
    with pytest.raises(PullprintError) as caught:
        haproxy.render(cluster, haproxy.LbSettings())
    assert words in caught.value.message


def test_https_collectors_are_verified(tmp_path: Path) -> None:
    settings = haproxy.LbSettings(backend_ca_file="/etc/ssl/certs/ca-certificates.crt",
                                  socket_path=str(tmp_path / "a.sock"))
    text = haproxy.render({"collectors": [{"id": "c1", "url": "https://127.0.0.1:8443"}]}, settings)
    assert "server c1 127.0.0.1:8443 check ssl verify required ca-file" in text
    haproxy.check(_write(tmp_path, text))


def test_stats_page_stays_on_loopback() -> None:
    with pytest.raises(PullprintError, match="loopback"):
        haproxy.render(CLUSTER, haproxy.LbSettings(stats_bind="0.0.0.0:8404"))


def test_collectors_over_mutual_tls_with_the_cluster_ca_and_its_crl_pass_haproxy_check(tmp_path: Path) -> None:
    from pullprint.pki import Authority

    ca = Authority(tmp_path / "ca")
    ca.init()
    cert, key = ca.issue("lb", "lb", ["127.0.0.1"])
    bundle = tmp_path / "lb-bundle.pem"
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    settings = haproxy.LbSettings(tls_cert=str(bundle), backend_ca_file=str(ca.cert_file),
                                  backend_client_cert=str(bundle), backend_crl_file=str(ca.crl_file),
                                  socket_path=str(tmp_path / "a.sock"))
    text = haproxy.render({"collectors": [{"id": "c1", "url": "https://127.0.0.1:8443"},
                                          {"id": "c2", "url": "https://127.0.0.1:8444"}]}, settings)
    for sid, port in (("c1", 8443), ("c2", 8444)):
        assert (f"server {sid} 127.0.0.1:{port} check ssl verify required ca-file {ca.cert_file} verifyhost "
                f"{sid}.collector.pullprint check-ssl crl-file {ca.crl_file} crt {bundle}") in text
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    haproxy.check(config, strict=True)


def test_the_console_goes_to_the_analysts_over_verified_tls(tmp_path: Path) -> None:
    cluster = {**CLUSTER, "analysts": [{"id": "a1", "url": "https://10.0.0.20:8700"},
                                       {"id": "a2", "url": "https://10.0.0.21:8700"}]}
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
                    "-keyout", str(tmp_path / "ca.key"), "-out", str(ca)], check=True, capture_output=True)
    settings = haproxy.LbSettings(socket_path=str(tmp_path / "admin.sock"), backend_ca_file=str(ca))
    text = haproxy.render(cluster, settings)
    haproxy.check(_write(tmp_path, text), strict=True)
    assert "use_backend be_console if console_path" in text
    assert (f"server a1 10.0.0.20:8700 check ssl verify required ca-file {ca} verifyhost analyst.pullprint "
            "check-ssl") in text
    # cluster.json's single analyst_url serves as well; without any analyst there is no console route.
    assert "server analyst 127.0.0.1:8700 check" in haproxy.render(
        {**CLUSTER, "analyst_url": "http://127.0.0.1:8700"}, settings)
    assert "be_console" not in haproxy.render(CLUSTER, settings)
    with pytest.raises(PullprintError, match="analyst a1 is https: set backend_ca_file"):
        haproxy.render(cluster, haproxy.LbSettings(socket_path=str(tmp_path / "a.sock")))
    with pytest.raises(PullprintError, match="analyst ids must be unique"):
        haproxy.render({**CLUSTER, "analysts": [{"id": "a", "url": "http://h:1"}] * 2}, settings)


def test_a_real_haproxy_routes_the_console_and_nothing_else_to_the_analyst(tmp_path: Path) -> None:
    import shutil
    import tempfile

    import requests

    from lb import runtime
    from pullprint import daemons
    from tests.lb.conftest import start_backend

    ports = {"c1": daemons.free_port(), "analyst": daemons.free_port()}
    backends = [start_backend(tmp_path, sid, port) for sid, port in ports.items()]
    socket_dir = Path(tempfile.mkdtemp(prefix="pp-lb-"))
    lb_port = daemons.free_port()
    try:
        cluster = {"collectors": [{"id": "c1", "url": f"http://127.0.0.1:{ports['c1']}"}],
                   "analyst_url": f"http://127.0.0.1:{ports['analyst']}"}
        settings = haproxy.LbSettings(bind=f"127.0.0.1:{lb_port}", socket_path=str(socket_dir / "admin.sock"))
        config = _write(tmp_path, haproxy.render(cluster, settings))
        backends.append(haproxy.start(config, tmp_path / "haproxy.log"))
        daemons.wait_until(lambda: (socket_dir / "admin.sock").exists(), 5, "HAProxy's admin socket")
        runtime.wait_for_state(str(socket_dir / "admin.sock"), "c1", runtime.UP, timeout=5)
        for path in ("/console", "/console/login", "/console/static/console.css", "/consolex", "/api/v1/printers",
                     "/release", "/x/console"):
            requests.get(f"http://127.0.0.1:{lb_port}{path}", timeout=5)
        received = {sid: (tmp_path / f"{sid}.receipts").read_text().split("\n") for sid in ports}
        assert [line.split()[1] for line in received["analyst"] if line] == [
            "/console", "/console/login", "/console/static/console.css"]
        assert [line.split()[1] for line in received["c1"] if line] == ["/consolex", "/api/v1/printers", "/release",
                                                                         "/x/console"]
        # The collectors' server states are what `pullprint lb status` shows, the console's backend apart.
        assert runtime.server_states(str(socket_dir / "admin.sock")) == {"c1": "UP"}
    finally:
        for daemon in reversed(backends):
            daemon.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
