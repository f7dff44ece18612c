"""A private cupsd (own config, spool, port) for the demo, the collector's local output queues and tests.

The directory tree:

    STATE/etc/cupsd.conf, cups-files.conf, pullprint/backend.conf   ServerRoot
    STATE/bin/                  ServerBin: symlinks to /usr/lib/cups/* ...
    STATE/bin/backend/          ... except backend/: ipp, ipps, socket, lpd + our pullprint, pullprints
    STATE/spool/, spool/tmp     RequestRoot, TempDir
    STATE/cache, state, log     CacheDir, StateDir, logs

cupsd refuses a backend that is not owned by root (or by the user cupsd runs as) or is group/world
writable, and one whose directory is world writable, so the tree is created 0755 and never under a
1777 folder.

Who runs the backends: a cupsd started by an ordinary user (a collector under its service user)
runs every backend as that user, who owns the tree. A cupsd started by root runs world-executable
backends as lp, which must then reach the spool files; when the tree sits where lp cannot enter
(a 0700 state folder), the backends are installed 0700 instead, so cupsd runs them as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
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
{listen_lines}{socket_line}Browsing No
WebInterface No
DefaultAuthType Basic
MaxJobs 0
PreserveJobHistory Yes
PreserveJobFiles No
JobRetryInterval {retry_interval}
<Location />
  Order allow,deny
  Allow localhost
{allow_lines}</Location>
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
    netns: str | None = None

    @property
    def server(self) -> str:
        if self.netns:  # 127.0.0.1 here is not its loopback; a filesystem socket reaches across
            return str(self.socket_path)
        return f"127.0.0.1:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self.root / "state" / "cups.sock"

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
              retry_interval: int = 300, sync_on_close: bool = False,
              listen: Sequence[str] = (), allow: Sequence[str] = (), netns: str | None = None,
              timeout: float = 20.0, new_session: bool = True) -> PrivateCupsd:
        """Build the tree under `state_dir`, start ``cupsd -f`` and wait until it accepts connections.

        `retry_interval` is JobRetryInterval: how long a job stays held after a backend asked for a
        retry (CUPS_BACKEND_RETRY) before cupsd runs it again. `sync_on_close`: SyncOnClose Yes, cupsd
        fsyncs each spool and state file it writes (crash-safe; off by default, as in Debian's CUPS).

        A print server for other hosts needs `listen` (more IPv4 addresses to listen on, with the
        same port) and `allow` (cupsd.conf Allow values such as ``10.231.7.0/24``; only localhost
        otherwise). `netns` runs cupsd inside that network namespace (``ip netns exec``), a separate
        host as far as networking goes; `server` is then its domain socket.
        """
        paths = require("cupsd", "ip") if netns else require("cupsd")
        root = Path(state_dir).resolve()
        port = port or free_port()
        _build_tree(root)
        backends_as_root = os.geteuid() == 0 and not lp_can_enter(root)
        _install_stock_backends(root / "bin" / "backend", as_root=backends_as_root)
        socket_path = root / "state" / "cups.sock"
        socket_line = f"Listen {socket_path}\n" if len(str(socket_path)) <= _MAX_SOCKET_PATH else ""
        (root / "etc" / "cups-files.conf").write_text(_CUPS_FILES_CONF.format(root=root)
                                                      + ("SyncOnClose Yes\n" if sync_on_close else ""))
        if netns and not socket_line:
            raise ValueError(f"{socket_path} is too long for a unix socket; a cupsd in a network "
                             f"namespace is reached through it")
        listen_lines = "".join(f"Listen {host}:{port}\n" for host in listen)
        allow_lines = "".join(f"  Allow {source}\n" for source in allow)
        (root / "etc" / "cupsd.conf").write_text(_CUPSD_CONF.format(
            port=port, socket_line=socket_line, log_level=log_level, retry_interval=retry_interval,
            listen_lines=listen_lines, allow_lines=allow_lines))
        conf = ["-c", str(root / "etc" / "cupsd.conf"), "-s", str(root / "etc" / "cups-files.conf")]
        check = subprocess.run([paths["cupsd"], "-t", *conf], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"cupsd refused its configuration: {check.stdout}{check.stderr}")
        prefix = [paths["ip"], "netns", "exec", netns] if netns else []
        ready = (lambda: _socket_open(socket_path)) if netns else (lambda: port_open("127.0.0.1", port))
        daemon = start("cupsd", [*prefix, paths["cupsd"], "-f", *conf], log_path=root / "log" / "cupsd.out",
                       ready=ready, timeout=timeout, new_session=new_session)
        return cls(root=root, port=port, daemon=daemon, netns=netns)


def _socket_open(path: Path) -> bool:
    """True when something accepts connections on the unix socket `path`."""
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(0.2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def lp_can_enter(root: Path) -> bool:
    """True when every folder above `root` lets others through (backends run as lp read the spool)."""
    return all(not parent.exists() or parent.stat().st_mode & 0o001 for parent in root.parents)


def _build_tree(root: Path) -> None:
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


def _install_stock_backends(backend_dir: Path, *, as_root: bool) -> None:
    """cupsd's own backends, linked in, or copied where a link would not run as needed.

    `as_root`: copies 0700, which cupsd runs as root. An ordinary user's cupsd cannot run a
    root-only backend (lpd is 0744): it gets a copy of its own (owned by that user, which cupsd
    accepts). Copies are made again at every start, so a CUPS update reaches them on restart.
    """
    for name in STOCK_BACKENDS:
        target = CUPS_SERVERBIN / "backend" / name
        path = backend_dir / name
        if not target.exists():
            continue
        copy_mode = 0o700 if as_root else None if os.access(target, os.X_OK) else 0o755
        if path.is_symlink() or path.exists():
            path.unlink()
        if copy_mode is None:
            path.symlink_to(target)
            continue
        tmp = path.with_name(f".{name}.tmp")
        shutil.copyfile(target, tmp)
        os.chmod(tmp, copy_mode)
        os.replace(tmp, path)
