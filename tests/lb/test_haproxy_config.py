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
