"""A small client for the simulator's control API, and a reader of what a printer received."""

from __future__ import annotations

import builtins
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReceivedJob:
    """One job (one connection) a simulated printer recorded."""

    name: str
    path: Path
    bytes: int
    sha256: str
    received_at: float
    peer: str
    complete: bool

    def read(self) -> builtins.bytes:
        return self.path.read_bytes()


def received_jobs(sink_dir: str | Path) -> list[ReceivedJob]:
    """Jobs in a sink directory, oldest first (only complete files: `.prn` appears atomically)."""
    jobs = []
    for prn in sorted(Path(sink_dir).glob("*.prn")):
        meta = json.loads(prn.with_suffix(".json").read_text())
        jobs.append(ReceivedJob(prn.stem, prn, meta["bytes"], meta["sha256"], meta["received_at"],
                                meta["peer"], meta["complete"]))
    return jobs


class SimControlError(RuntimeError):
    pass


class SimControl:
    """`SimControl(url).set_fault("p1", "jam")`, `.clear("p1", "jam")`, `.received("p1")`, ..."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._sink_dirs: dict[str, str] = {}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,  # noqa: S310 - http only
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SimControlError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from exc

    def printers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/printers")["printers"]

    def printer(self, printer_id: str) -> dict[str, Any]:
        return self._call("GET", f"/printers/{printer_id}")

    def set_fault(self, printer_id: str, *faults: str) -> dict[str, Any]:
        return self._call("POST", f"/printers/{printer_id}/faults", {"set": list(faults)})

    def clear(self, printer_id: str, *faults: str) -> dict[str, Any]:
        """Clear the named faults, or every fault when none is named."""
        body: dict[str, Any] = {"clear": list(faults)} if faults else {"clear_all": True}
        return self._call("POST", f"/printers/{printer_id}/faults", body)

    def sink(self, printer_id: str, *, stall: bool | None = None, refuse: bool | None = None,
             delay_seconds: float | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"stall": stall, "refuse": refuse, "delay_seconds": delay_seconds}.items()
                if v is not None}
        return self._call("POST", f"/printers/{printer_id}/sink", body)

    def snmp(self, printer_id: str, *, respond: bool | None = None,
             error_state_bytes: int | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"respond": respond, "error_state_bytes": error_state_bytes}.items()
                if v is not None}
        return self._call("POST", f"/printers/{printer_id}/snmp", body)

    def reboot(self, printer_id: str) -> dict[str, Any]:
        return self._call("POST", f"/printers/{printer_id}/reboot", {})

    def received(self, printer_id: str) -> list[ReceivedJob]:
        if printer_id not in self._sink_dirs:
            self._sink_dirs[printer_id] = self.printer(printer_id)["sink_dir"]
        return received_jobs(self._sink_dirs[printer_id])
