"""A private redis-server on loopback for the local cluster and the tests."""

from __future__ import annotations

from pathlib import Path

from pullprint.daemons import Daemon, free_port, port_open, require, start


def start_redis(state_dir: Path, port: int | None = None) -> tuple[Daemon, str]:
    """A private redis-server on loopback (no persistence: Redis holds only rebuildable state)."""
    paths = require("redis-server")
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [paths["redis-server"], "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(state_dir), "--protected-mode", "yes"]
    daemon = start("redis", argv, log_path=state_dir / "redis.log",
                   ready=lambda: port_open("127.0.0.1", port))
    return daemon, f"redis://127.0.0.1:{port}/0"
