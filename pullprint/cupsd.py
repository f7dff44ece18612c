"""A private cupsd (own config, spool, port) for the demo, the collector's local output queues and tests.

The directory tree follows ``shared/reference/debian12-facts.md`` §1 ("Running a throwaway cupsd"):

    STATE/etc/cupsd.conf, cups-files.conf, pullprint/backend.conf   ServerRoot
    STATE/bin/                  ServerBin: symlinks to /usr/lib/cups/* ...
    STATE/bin/backend/          ... except backend/: ipp, ipps, socket, lpd + our pullprint, pullprints
    STATE/spool/, spool/tmp     RequestRoot, TempDir
    STATE/cache, state, log     CacheDir, StateDir, logs

cupsd refuses a backend that is not owned by root or is group/world writable, and one whose
directory is world writable, so the tree is created 0755 root and never under a 1777 folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pullprint.daemons import Daemon, free_port, port_open, require, start

CUPS_SERVERBIN = Path("/usr/lib/cups")
# The stock backends a private cupsd offers (the collector's output paths use ipp/ipps/lpd/socket).
STOCK_BACKENDS = ("ipp", "ipps", "http", "https", "socket", "lpd")
# A unix socket path must fit in sun_path (108 bytes with the NUL).
_MAX_SOCKET_PATH = 100

_CUPS_FILES_CONF = """\
ServerRoot {root}/etc
ServerBin {root}/bin
RequestRoot {root}/spool
TempDir {root}/spool/tmp
CacheDir {root}/cache
StateDir {root}/state
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
SystemGroup root lpadmin
FileDevice No
Printcap {root}/state/printcap
"""

_CUPSD_CONF = """\
LogLevel {log_level}
Listen 127.0.0.1:{port}
{socket_line}Browsing No
WebInterface No
DefaultAuthType Basic
MaxJobs 0
PreserveJobHistory Yes
PreserveJobFiles No
JobRetryInterval {retry_interval}
<Location />
  Order allow,deny
  Allow localhost
</Location>
<Policy default>
  # Without these, job-name and job-originating-user-name are hidden from unauthenticated clients.
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""


@dataclass
class PrivateCupsd:
    """A running private cupsd; `server` is what pycups, lp and CUPS_SERVER take."""

    root: Path
    port: int
    daemon: Daemon

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def server_root(self) -> Path:
        return self.root / "etc"

    @property
    def backend_dir(self) -> Path:
        return self.root / "bin" / "backend"

    @property
    def error_log(self) -> Path:
        return self.root / "log" / "error_log"

    def env(self) -> dict[str, str]:
        """The environment for `lp`, `lpstat`, `lpadmin` talking to this cupsd."""
        env = dict(os.environ)
        env["CUPS_SERVER"] = self.server
        return env

    def alive(self) -> bool:
        return self.daemon.alive()

    def stop(self, timeout: float = 10.0) -> None:
        self.daemon.stop(timeout)

    def log_tail(self, lines: int = 40) -> str:
        if self.error_log.exists():
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        return self.daemon.log_tail(lines)

    def __enter__(self) -> PrivateCupsd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def start(cls, state_dir: Path, port: int | None = None, *, log_level: str = "info",
              install_pullprint_backend: bool = True, retry_interval: int = 300,
              timeout: float = 20.0) -> PrivateCupsd:
        """Build the tree under `state_dir`, start ``cupsd -f`` and wait until it accepts connections.

        `retry_interval` is JobRetryInterval: how long a job stays held after a backend asked for a
        retry (CUPS_BACKEND_RETRY) before cupsd runs it again.
        """
        paths = require("cupsd")
        root = Path(state_dir).resolve()
        port = port or free_port()
        _build_tree(root)
        _install_stock_backends(root / "bin" / "backend")
        if install_pullprint_backend:
            # Imported here: the core must not import a component at import time.
            from cups_backend.install import install_backend

            install_backend(root / "bin" / "backend")
        socket_path = root / "state" / "cups.sock"
        socket_line = f"Listen {socket_path}\n" if len(str(socket_path)) <= _MAX_SOCKET_PATH else ""
        (root / "etc" / "cups-files.conf").write_text(_CUPS_FILES_CONF.format(root=root))
        (root / "etc" / "cupsd.conf").write_text(_CUPSD_CONF.format(
            port=port, socket_line=socket_line, log_level=log_level, retry_interval=retry_interval))
        conf = ["-c", str(root / "etc" / "cupsd.conf"), "-s", str(root / "etc" / "cups-files.conf")]
        check = subprocess.run([paths["cupsd"], "-t", *conf], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"cupsd refused its configuration: {check.stdout}{check.stderr}")
        daemon = start("cupsd", [paths["cupsd"], "-f", *conf], log_path=root / "log" / "cupsd.out",
                       ready=lambda: port_open("127.0.0.1", port), timeout=timeout)
        return cls(root=root, port=port, daemon=daemon)


def _build_tree(root: Path) -> None:
    # Backends that run as lp (the stock ipp and socket backends) open the spool file themselves,
    # so lp must be able to walk down to it.
    for parent in root.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise ValueError(f"{root}: the lp user cannot enter {parent} (mode "
                             f"{parent.stat().st_mode & 0o777:o}); put the private cupsd under a "
                             f"folder everyone may enter")
    for sub in ("", "etc", "etc/ppd", "etc/ssl", "etc/pullprint", "bin", "bin/backend", "spool", "cache",
                "state", "log"):
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o755)  # noqa: S103 - cupsd and lp must enter; nobody else writes
    tmp = root / "spool" / "tmp"
    tmp.mkdir(exist_ok=True)
    os.chmod(tmp, 0o1777)  # noqa: S103 - TempDir: sticky, as cupsd expects
    for entry in CUPS_SERVERBIN.iterdir():
        if entry.name == "backend":
            continue
        link = root / "bin" / entry.name
        if not link.is_symlink() and not link.exists():
            link.symlink_to(entry)


def _install_stock_backends(backend_dir: Path) -> None:
    for name in STOCK_BACKENDS:
        target = CUPS_SERVERBIN / "backend" / name
        link = backend_dir / name
        if target.exists() and not link.is_symlink() and not link.exists():
            with contextlib.suppress(FileExistsError):
                link.symlink_to(target)
