"""An IPP printer for the simulator: a real ippeveprinter whose every job lands in the printer's sink folder.

ippeveprinter runs ``-c HOOK FILE`` for each job with the job's attributes in its environment; the
hook (this module run as a script) copies the document into the sink folder as ``ipp-<job>.prn``
with a ``.json`` sidecar (sha256, bytes, the job's name, owner and copies), the sidecar written
first and the ``.prn`` renamed into place last, as the raw and LPD sinks do.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from printer_sim.dbus import ensure_system_dbus
from pullprint.daemons import Daemon, free_port, port_open, require, start

FORMATS = "application/pdf,application/postscript,text/plain,application/octet-stream,application/vnd.hp-pcl"


def start_ipp_printer(printer_id: str, sink_dir: Path, work_dir: Path, *, port: int = 0,
                      host_name: str = "localhost") -> tuple[Daemon, str]:
    """Start ippeveprinter for `printer_id` (on `port`, any free one for 0), named `host_name` in its URIs;
    returns it and its ``ipp://`` URI."""
    paths = require("ippeveprinter")
    ensure_system_dbus()  # ippeveprinter will not start without a system bus
    sink_dir.mkdir(parents=True, exist_ok=True)
    spool = work_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    hook = work_dir / "record-job"
    hook.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {sink_dir} \"$1\"\n")
    hook.chmod(0o755)
    port = port or free_port()
    # ippeveprinter listens on the addresses of `host_name` only (localhost: loopback), so it is asked there.
    daemon = start(f"ippeveprinter {printer_id}", [
        paths["ippeveprinter"], "-p", str(port), "-n", host_name, "-d", str(spool), "-r", "off", "-2",
        "-f", FORMATS, "-c", str(hook), f"pullprint-sim-{printer_id}"],
        log_path=work_dir / "ippeveprinter.log", ready=lambda: port_open(host_name, port), new_session=False)
    return daemon, f"ipp://{host_name}:{port}/ipp/print"


def record_job(sink_dir: Path, document: Path, environ: dict[str, str]) -> Path:
    """Copy one received document into `sink_dir` with its sidecar; returns the ``.prn`` path."""
    data = document.read_bytes()
    name = f"ipp-{time.time_ns()}-{environ.get('IPP_JOB_ID', '0')}"
    meta = {"protocol": "ipp", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "received_at": time.time(), "job_name": environ.get("IPP_JOB_NAME", ""),
            "user": environ.get("IPP_JOB_ORIGINATING_USER_NAME", ""),
            "copies": int(environ.get("IPP_COPIES", "1") or 1), "content_type": environ.get("CONTENT_TYPE", "")}
    tmp = sink_dir / f".{name}.prn.tmp"
    tmp.write_bytes(data)
    (sink_dir / f"{name}.json").write_text(json.dumps(meta))
    final = sink_dir / f"{name}.prn"
    os.replace(tmp, final)
    return final


if __name__ == "__main__":  # the -c hook: python -m printer_sim.ipp SINK_DIR DOCUMENT
    record_job(Path(sys.argv[1]), Path(sys.argv[2]), dict(os.environ))
