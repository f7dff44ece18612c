"""Start the simulator as a child process and wait until it listens (used by the demo and the tests).

    sim = start_sim(3, state_dir, v3=("p3",))
    sim.describe["printers"][0]["uri"]     # socket://127.0.0.1:PORT
    sim.control.set_fault("p1", "jam")
    sim.stop()
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printer_sim.control import SimControl
from pullprint.daemons import Daemon, start


@dataclass
class SimHandle:
    daemon: Daemon
    describe: dict[str, Any]
    describe_path: Path
    control: SimControl = field(init=False)

    def __post_init__(self) -> None:
        self.control = SimControl(self.describe["control_url"])

    @property
    def printers(self) -> list[dict[str, Any]]:
        return self.describe["printers"]

    def printer(self, printer_id: str) -> dict[str, Any]:
        return next(p for p in self.printers if p["id"] == printer_id)

    def stop(self) -> None:
        self.daemon.stop()

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sim(count: int, state_dir: Path, *, v3: tuple[str, ...] | list[str] = (), community: str = "public",
              snmp: bool = True, control_port: int = 0, timeout: float = 60.0,
              extra_args: list[str] | None = None, ipp: tuple[str, ...] | list[str] = (),
              lpd: tuple[str, ...] | list[str] = ()) -> SimHandle:
    """Run `pullprint printer-sim` with `count` printers under `state_dir`; return once it listens."""
    state_dir.mkdir(parents=True, exist_ok=True)
    describe_path = state_dir / "printers.json"
    describe_path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "printer_sim.cli", "--printers", str(count), "--state-dir", str(state_dir),
            "--describe", str(describe_path), "--community", community, "--control-port", str(control_port),
            "--snmp-mode", "port" if snmp else "none"]
    if v3:
        argv += ["--v3", ",".join(v3)]
    if ipp:
        argv += ["--ipp", ",".join(ipp)]
    if lpd:
        argv += ["--lpd", ",".join(lpd)]
    argv += extra_args or []
    root = Path(__file__).resolve().parent.parent
    daemon = start("printer-sim", argv, log_path=state_dir / "printer-sim.log", cwd=root,
                   ready=describe_path.exists, timeout=timeout)
    return SimHandle(daemon, json.loads(describe_path.read_text()), describe_path)
