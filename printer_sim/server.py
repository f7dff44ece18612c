"""The simulator process: N printers (sink + SNMP agent) and the loopback HTTP control API.

Control API (JSON):
  GET  /printers                      -> {"printers": [state...]}
  GET  /printers/<id>                 -> state, sink knobs, ports
  POST /printers/<id>/faults          {"set": [...], "clear": [...]} or {"clear_all": true}
  POST /printers/<id>/sink            {"stall": bool, "refuse": bool, "delay_seconds": float}
  POST /printers/<id>/snmp            {"respond": bool, "error_state_bytes": 1|2}
  POST /printers/<id>/reboot
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from printer_sim.ipp import start_ipp_printer
from printer_sim.lpd import LpdSink, start_lpd_sink
from printer_sim.sink import Sink, SinkServer
from printer_sim.snmp_agent import SnmpAgent, SnmpSettings
from printer_sim.state import FAULTS, PrinterState, UnknownFault
from pullprint.daemons import Daemon


class Simulator:
    """Owns every simulated printer. `start()` binds all ports; `run_forever()` serves SNMP."""

    def __init__(self, count: int, state_dir: Path, *, host: str = "127.0.0.1", control_port: int = 0,
                 v3_printers: tuple[str, ...] = (), community: str = "public", v3_user: str = "pullprint",
                 v3_auth_key: str = "pullprint-auth", v3_priv_key: str = "pullprint-priv",
                 snmp: bool = True, ipp_printers: tuple[str, ...] = (),
                 lpd_printers: tuple[str, ...] = (), raw_port: int = 0, snmp_port: int = 0,
                 ipp_port: int = 0, ipp_host: str = "localhost") -> None:
        self.state_dir = state_dir
        self.host = host
        self.ids = [f"p{i}" for i in range(1, count + 1)]
        self.states = {pid: PrinterState(pid) for pid in self.ids}
        self.settings = {pid: (SnmpSettings(version="3", user=v3_user, auth_key=v3_auth_key,
                                            priv_key=v3_priv_key) if pid in v3_printers
                               else SnmpSettings(community=community)) for pid in self.ids}
        self.sinks = {pid: Sink(self.states[pid], state_dir / "sinks" / pid, host) for pid in self.ids}
        # Fixed ports (a printer host on a network): printer i (from 0) takes base + i; 0: any free.
        if raw_port:
            for index, pid in enumerate(self.ids):
                self.sinks[pid].port = raw_port + index
        self.ipp_port = ipp_port
        self.ipp_host = ipp_host
        self.sink_server = SinkServer()
        self.agent = SnmpAgent([(self.states[p], self.settings[p]) for p in self.ids], host,
                               base_port=snmp_port) if snmp else None
        # Printers that take jobs over IPP (a real ippeveprinter) or LPD instead of raw 9100; their
        # SNMP agent is the simulator's, as for every printer.
        self.ipp_printers = tuple(p for p in ipp_printers if p in self.ids)
        self.lpd_printers = tuple(p for p in lpd_printers if p in self.ids)
        self.uris: dict[str, str] = {}
        self._ipp_daemons: list[Daemon] = []
        self._lpd_sinks: list[LpdSink] = []
        self.control_port = control_port
        self.http: ThreadingHTTPServer | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        for pid in self.ids:
            self.sink_server.add(self.sinks[pid])
        self.sink_server.start()
        for pid in self.ids:
            sink_dir = self.sinks[pid].sink_dir
            if pid in self.ipp_printers:
                port = self.ipp_port + self.ipp_printers.index(pid) if self.ipp_port else 0
                daemon, self.uris[pid] = start_ipp_printer(pid, sink_dir, self.state_dir / "ipp" / pid,
                                                           port=port, host_name=self.ipp_host)
                self._ipp_daemons.append(daemon)
            elif pid in self.lpd_printers:
                lpd = start_lpd_sink(sink_dir, host=self.host)
                self._lpd_sinks.append(lpd)
                self.uris[pid] = f"lpd://{self.host}:{lpd.port}/{pid}"
            else:
                self.uris[pid] = f"socket://{self.host}:{self.sinks[pid].port}"
        if self.agent is not None:
            await self.agent.start()
        self.http = ThreadingHTTPServer((self.host, self.control_port), _handler_for(self))
        self.http.daemon_threads = True
        self.control_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, name="sim-control", daemon=True).start()

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"

    def describe(self) -> dict[str, Any]:
        printers = []
        for index, pid in enumerate(self.ids):
            entry: dict[str, Any] = {"id": pid, "uri": self.uris[pid], "sink_dir": str(self.sinks[pid].sink_dir)}
            if self.agent is not None:
                entry["snmp"] = f"{self.host}:{self.agent.ports[index]}"
                entry.update(self.settings[pid].describe())
            printers.append(entry)
        return {"control_url": self.control_url, "pid": os.getpid(), "printers": printers}

    def write_describe(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.describe(), indent=1))
        os.replace(tmp, path)  # atomic: a parent waiting for the file never reads half of it

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._stop.wait()

    def request_stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def close(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self.sink_server.stop()
        for lpd in self._lpd_sinks:
            lpd.stop()
        for daemon in self._ipp_daemons:
            daemon.stop()
        if self.agent is not None:
            self.agent.stop()

    # --- control operations (called from HTTP threads) ------------------------------------
    def printer_view(self, pid: str) -> dict[str, Any]:
        view = self.states[pid].describe()
        view["sink"] = self.sinks[pid].knobs()
        view["sink_dir"] = str(self.sinks[pid].sink_dir)
        if self.agent is not None:
            view["snmp"] = f"{self.host}:{self.agent.ports[self.ids.index(pid)]}"
            view["snmp_version"] = self.settings[pid].version
        return view


_ROUTE = re.compile(r"^/printers(?:/(?P<id>[^/]+)(?:/(?P<action>faults|sink|snmp|reboot))?)?/?$")


def _handler_for(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # quiet: tests and load runs make many calls

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[str | None, str | None] | None:
            match = _ROUTE.match(self.path.split("?", 1)[0])
            if not match:
                self._send(404, {"error": "not-found", "message": f"no route {self.path}"})
                return None
            pid = match.group("id")
            if pid is not None and pid not in sim.states:
                self._send(404, {"error": "unknown-printer", "message": f"no printer {pid!r}"})
                return None
            return pid, match.group("action")

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            route = self._route()
            if route is None:
                return
            pid, action = route
            if action is not None:
                self._send(405, {"error": "method-not-allowed", "message": "use POST"})
            elif pid is None:
                self._send(200, {"printers": [sim.printer_view(p) for p in sim.ids],
                                 "faults": sorted(FAULTS)})
            else:
                self._send(200, sim.printer_view(pid))

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            route = self._route()
            if route is None:
                return
            pid, action = route
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as exc:
                self._send(400, {"error": "bad-json", "message": str(exc)})
                return
            if pid is None or action is None:
                self._send(405, {"error": "method-not-allowed", "message": "POST to /printers/<id>/<action>"})
                return
            state = sim.states[pid]
            try:
                if action == "faults":
                    state.change_faults(list(body.get("set", [])), list(body.get("clear", [])),
                                        bool(body.get("clear_all", False)))
                elif action == "sink":
                    sim.sink_server.configure(sim.sinks[pid], stall=body.get("stall"), refuse=body.get("refuse"),
                                              delay_seconds=body.get("delay_seconds"))
                elif action == "snmp":
                    state.set_snmp(body.get("respond"), body.get("error_state_bytes"))
                elif action == "reboot":
                    state.reboot()
            except (UnknownFault, ValueError, TypeError) as exc:
                self._send(400, {"error": "bad-request", "message": str(exc)})
                return
            self._send(200, sim.printer_view(pid))

    return Handler
