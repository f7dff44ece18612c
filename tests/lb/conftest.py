"""A real HAProxy in front of real HTTP backends (separate processes, so they can be SIGKILLed)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from lb import haproxy, runtime
from pullprint import daemons

BACKEND_APP = Path(__file__).with_name("backend_app.py")


@dataclass
class Cluster:
    """HAProxy + backends started for one test."""

    state_dir: Path
    lb_url: str
    socket_path: str
    config_path: Path
    haproxy: daemons.Daemon
    backends: dict[str, daemons.Daemon] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def receipts(self, test_id: str | None = None) -> Counter[str]:
        """How many requests each backend received (optionally only those tagged X-Test-Id)."""
        counts: Counter[str] = Counter()
        for sid in self.backends:
            path = self.state_dir / f"{sid}.receipts"
            if path.exists():
                for line in path.read_text().splitlines():
                    if test_id is None or line.split()[-1] == test_id:
                        counts[sid] += 1
        return counts

    def set_ready(self, sid: str, ready: bool) -> None:
        flag = self.state_dir / f"{sid}.notready"
        if ready:
            flag.unlink(missing_ok=True)
        else:
            flag.touch()

    def states(self) -> dict[str, str]:
        return runtime.server_states(self.socket_path)

    def whoami(self, session: requests.Session | None = None) -> str:
        response = (session or requests).get(f"{self.lb_url}/whoami", timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])


def start_backend(state_dir: Path, sid: str, port: int) -> daemons.Daemon:
    return daemons.start(f"backend-{sid}", [sys.executable, str(BACKEND_APP), "--id", sid, "--port", str(port),
                                            "--dir", str(state_dir)],
                         log_path=state_dir / f"{sid}.log", ready=lambda: daemons.port_open("127.0.0.1", port))


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[object]:
    started: list[daemons.Daemon] = []
    cleanup: list[Path] = []

    def make(n: int = 3, **settings: object) -> Cluster:
        ports = {f"c{i}": daemons.free_port() for i in range(1, n + 1)}
        backends = {sid: start_backend(tmp_path, sid, port) for sid, port in ports.items()}
        started.extend(backends.values())
        lb_port = daemons.free_port()
        # UNIX socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
        socket_dir = Path(tempfile.mkdtemp(prefix="pp-lb-"))
        cleanup.append(socket_dir)
        socket_path = str(socket_dir / "admin.sock")
        cluster = {"collectors": [{"id": sid, "url": f"http://127.0.0.1:{port}"} for sid, port in ports.items()]}
        (tmp_path / "cluster.json").write_text(json.dumps(cluster))
        lb_settings = haproxy.LbSettings(bind=f"127.0.0.1:{lb_port}", socket_path=socket_path)
        for key, value in settings.items():
            setattr(lb_settings, key, value)
        config_path = tmp_path / "haproxy.cfg"
        config_path.write_text(haproxy.render(cluster, lb_settings))
        hap = haproxy.start(config_path, tmp_path / "haproxy.log")
        started.append(hap)
        result = Cluster(tmp_path, f"http://127.0.0.1:{lb_port}", socket_path, config_path, hap, backends, ports)
        # HAProxy answers on its binds a moment before its admin socket exists (seen on a loaded machine).
        daemons.wait_until(lambda: Path(socket_path).exists(), 5, "HAProxy's admin socket")
        for sid in ports:
            runtime.wait_for_state(socket_path, sid, runtime.UP, timeout=5)
        return result

    yield make
    for daemon in reversed(started):
        daemon.stop()
    for folder in cleanup:
        shutil.rmtree(folder, ignore_errors=True)
