"""Install the backend program and its credentials file, and create the shared raw queue (pycups)."""

from __future__ import annotations

import grp
import logging
import os
import stat
import sys
from pathlib import Path

from cups_backend import config

DEFAULT_BACKEND_DIR = Path("/usr/lib/cups/backend")
DEFAULT_SERVER_ROOT = Path("/etc/cups")
BACKEND_NAMES = ("pullprint", "pullprints")
# Where the queue lives decides whether cupsd takes jobs from other hosts for it (printer-is-shared):
# a workstation prints only for itself; a print server takes its workstations' jobs.
ROLES = {"workstation": False, "print-server": True}
log = logging.getLogger(__name__)

_SCRIPT = """\
#!{python}
# pullprint CUPS backend (installed by `pullprint queue install`); see cups_backend/backend.py.
import sys

sys.path.insert(0, {code_root!r})  # where cups_backend and pullprint live

from cups_backend import main  # noqa: E402

sys.exit(main(sys.argv))
"""
CODE_ROOT = str(Path(__file__).resolve().parent.parent)


def backend_script(python: str | None = None) -> str:
    return _SCRIPT.format(python=python or sys.executable, code_root=CODE_ROOT)


def _reachable_by_everyone(path: Path) -> bool:
    """True when a non-root user (lp) can reach and read/execute `path`."""
    path = path.resolve()
    for folder in path.parents:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def backend_mode(python: str | None = None, backend_dir: Path = DEFAULT_BACKEND_DIR) -> int:
    """0755 (cupsd runs it as lp) when lp can run the interpreter, read the code and reach
    `backend_dir` (a private cupsd's spool sits beside it), else 0700 (root).

    A backend that is not world readable+executable is run as root by cupsd. That is needed when the
    virtualenv lives where lp cannot go (e.g. an interpreter under /root), or a private cupsd lives
    in a 0700 folder.
    """
    needed = [Path(python or sys.executable), Path(__file__), Path(backend_dir)]
    return 0o755 if all(_reachable_by_everyone(p) for p in needed) else 0o700


def install_backend(backend_dir: Path = DEFAULT_BACKEND_DIR, *, python: str | None = None,
                    mode: int | None = None) -> list[Path]:
    """Write `pullprint` and `pullprints` into `backend_dir`, root:root, 0755 (or 0700, see backend_mode).

    cupsd refuses a backend that is group/world writable, not owned by root, or sits in a world
    writable folder; this checks the folder and fails loudly rather than leaving a queue that stops.
    """
    backend_dir = Path(backend_dir)
    backend_dir.mkdir(parents=True, exist_ok=True)
    if backend_dir.stat().st_mode & (stat.S_IWOTH | stat.S_IWGRP):
        raise PermissionError(f"{backend_dir} is group/world writable; cupsd would refuse backends in it")
    mode = backend_mode(python, backend_dir) if mode is None else mode
    if mode == 0o700:
        log.warning("the lp user cannot reach the interpreter %s or %s; installing the backend 0700 "
                    "so cupsd runs it as root", python or sys.executable, backend_dir)
    text = backend_script(python)
    written = []
    for name in BACKEND_NAMES:
        path = backend_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.chown(tmp, 0, 0)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        written.append(path)
    return written


def write_credentials(server_root: Path, token: str, ca_file: str | None = None) -> Path:
    """Write ``SERVER_ROOT/pullprint/backend.conf`` as root:lp 0640 (the backend may run as lp)."""
    if not token.strip():
        raise ValueError("the submit token is empty")
    folder = Path(server_root) / config.CONF_RELATIVE.parent
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)  # noqa: S103 - lp must enter; the file itself is 0640
    path = folder / config.CONF_RELATIVE.name
    tmp = path.with_name(".backend.conf.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(config.render(token.strip(), ca_file))
    try:
        lp_gid = grp.getgrnam("lp").gr_gid
    except KeyError:
        lp_gid = 0
    os.chown(tmp, 0, lp_gid)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)
    return path


def create_queue(connection, name: str, uri: str, *, info: str = "pullprint secure release",
                 location: str = "", error_policy: str = "retry-job", shared: bool = False) -> dict:
    """Create (or update) the raw queue; returns its getPrinters() entry.

    `shared` (printer-is-shared) is what a print server needs: cupsd refuses jobs from other hosts
    for an unshared queue ("The printer or class is not shared"). A workstation keeps it private.
    pycups' addPrinter returns None without error for a name cupsd rejects, so the queue is looked
    up afterwards and its absence is an error.
    """
    connection.addPrinter(name, device=uri, ppdname="raw", info=info, location=location)
    printers = connection.getPrinters()
    if name not in printers:
        raise ValueError(f"cupsd did not create the queue {name!r} (names may not contain spaces, "
                         f"'/', '#', quotes or backslashes)")
    connection.setPrinterShared(name, shared)
    connection.setPrinterErrorPolicy(name, error_policy)
    connection.enablePrinter(name)
    connection.acceptJobs(name)
    return connection.getPrinters()[name]


def create_class(connection, name: str, uri: str, members: int, *, info: str = "pullprint secure release",
                 location: str = "", error_policy: str = "retry-job", shared: bool = False) -> list[str]:
    """The queue as a class of `members` raw queues (`NAME-1`…) with the same URI.

    cupsd runs one backend at a time per queue; a class lets it hand jobs to idle members, so
    that many jobs stream to the cluster at once. `shared` applies to the class and its members
    alike (a client may address a member directly). Returns the member names.
    """
    names = [f"{name}-{i}" for i in range(1, members + 1)]
    already = set(connection.getClasses().get(name) or [])  # installing again changes nothing
    for member in names:
        create_queue(connection, member, uri, info=f"{info} ({member})", location=location,
                     error_policy=error_policy, shared=shared)
        if member not in already:
            connection.addPrinterToClass(member, name)
    connection.setPrinterInfo(name, info)
    if location:
        connection.setPrinterLocation(name, location)
    connection.setPrinterShared(name, shared)
    connection.enablePrinter(name)
    connection.acceptJobs(name)
    if name not in connection.getClasses():
        raise ValueError(f"cupsd did not create the class {name!r}")
    return names


def connect(cups_server: str | None = None):
    """A pycups connection to `cups_server` ("host:port", a socket path, or the default)."""
    import cups

    if not cups_server:
        return cups.Connection()
    if cups_server.startswith("/"):
        return cups.Connection(host=cups_server)
    host, _, port = cups_server.rpartition(":")
    if host and port.isdigit():
        return cups.Connection(host=host, port=int(port))
    return cups.Connection(host=cups_server)
