"""`pullprint lb ...` as an operator types it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from pullprint import cli


def test_render_writes_a_checked_config_using_the_clusters_lb_url(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({"lb_url": "http://127.0.0.1:18555",
                                   "collectors": [{"id": "c1", "url": "http://127.0.0.1:18081", "pid": 1}]}))
    out = tmp_path / "haproxy.cfg"
    assert cli.main(["lb", "render", "--cluster", str(cluster), "--socket", str(tmp_path / "s.sock"),
                     "-o", str(out)]) == 0
    text = out.read_text()
    assert "bind 127.0.0.1:18555" in text and "server c1 127.0.0.1:18081 check" in text
    assert cli.main(["lb", "render", "--cluster", str(cluster), "--bind", "127.0.0.1:9999",
                     "--socket", str(tmp_path / "s.sock"), "-o", str(out)]) == 0
    assert "bind 127.0.0.1:9999" in out.read_text()
    assert cli.main(["lb", "check", "--strict", str(out)]) == 0


def test_render_of_a_bad_cluster_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({"collectors": []}))
    out = tmp_path / "haproxy.cfg"
    assert cli.main(["lb", "render", "--cluster", str(cluster), "-o", str(out)]) == 1
    assert "no collectors" in capsys.readouterr().err
    assert not out.exists()


def test_check_of_a_broken_file_fails_with_haproxys_reason(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.cfg"
    broken.write_text("frontend fe\n    bind 127.0.0.1:1\n    no_such_keyword yes\n")
    assert cli.main(["lb", "check", str(broken)]) == 1
    assert "no_such_keyword" in capsys.readouterr().err


@pytest.mark.integration
def test_drain_ready_and_status_against_a_running_haproxy(make_cluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = make_cluster(2)
    sock = ["--socket", cluster.socket_path]
    assert cli.main(["lb", "drain", "c1", *sock]) == 0
    assert "c1: DRAIN" in capsys.readouterr().out
    with requests.Session() as session:
        assert Counter(cluster.whoami(session) for _ in range(6)) == Counter({"c2": 6})
    assert cli.main(["lb", "status", "--json", *sock]) == 0
    assert json.loads(capsys.readouterr().out) == {"c1": "DRAIN", "c2": "UP"}
    assert cli.main(["lb", "ready", "c1", *sock]) == 0
    assert "c1: UP" in capsys.readouterr().out
    assert cli.main(["lb", "status", *sock]) == 0
    assert capsys.readouterr().out.split() == ["c1", "UP", "c2", "UP"]
    assert cli.main(["lb", "drain", "nope", *sock]) == 1
    assert "No such server" in capsys.readouterr().err


def test_render_takes_settings_from_a_config_file(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({"lb_url": "http://127.0.0.1:18555",
                                   "collectors": [{"id": "c1", "url": "http://127.0.0.1:18081"}]}))
    settings = tmp_path / "lb.json"
    settings.write_text(json.dumps({"lb": {"bind": "127.0.0.1:18600", "socket_path": str(tmp_path / "a.sock"),
                                           "run_user": "haproxy", "run_group": "haproxy",
                                           "server_timeout": "300s", "stats_bind": None}}))
    out = tmp_path / "haproxy.cfg"
    assert cli.main(["lb", "render", "--cluster", str(cluster), "--config", str(settings), "-o", str(out)]) == 0
    text = out.read_text()
    # The file's bind wins over the cluster's lb_url; the account and timeout come through.
    assert "bind 127.0.0.1:18600" in text and "user haproxy" in text and "timeout server 300s" in text
    assert "listen stats" not in text
