"""Install the backend program and its credentials file, and create the shared raw queue (pycups)."""

from __future__ import annotations

import grp
import http.client
import logging
import os
import pwd
import socket
import stat
import sys
import time
from pathlib import Path

from cups_backend import config

DEFAULT_BACKEND_DIR = Path("/usr/lib/cups/backend")
DEFAULT_SERVER_ROOT = Path("/etc/cups")
BACKEND_NAMES = ("pullprint", "pullprints")
# Where the queue lives decides whether cupsd takes jobs from other hosts for it (printer-is-shared):
# a workstation prints only for itself; a print server takes its workstations' jobs.
ROLES = {"workstation": False, "print-server": True}
log = logging.getLogger(__name__)

# cupsd starts the backend once per job, so its start is paid per job. `-I -S` (isolated, no `site`):
# the interpreter neither reads PYTHON* variables nor imports `site` (site-packages, .pth files, the
# editable install's finder, sitecustomize), about two thirds of a bare start. The backend needs only
# the standard library and the code in CODE_ROOT, which the script puts on sys.path itself. The kernel
# passes everything after the interpreter on a #! line as one argument, so the flags are one word.
INTERPRETER_FLAGS = "-IS"
_SCRIPT = """\
#!{python} {flags}
# pullprint CUPS backend (installed by `pullprint queue install`); see cups_backend/backend.py.
import sys

sys.path.insert(0, {code_root!r})  # where cups_backend and pullprint live

from cups_backend.backend import main  # noqa: E402

sys.exit(main(sys.argv))
"""
CODE_ROOT = str(Path(__file__).resolve().parent.parent)
# What the backend imports on a job: compiled at install time, because cupsd runs it as lp, which
# cannot write __pycache__ beside the code, and would otherwise compile them again for every job.
BYTECODE = ("cups_backend/__init__.py", "cups_backend/backend.py", "cups_backend/config.py",
            "cups_backend/exitcodes.py", "pullprint/__init__.py", "pullprint/errors.py", "pullprint/wire_headers.py")


def backend_script(python: str | None = None) -> str:
    return _SCRIPT.format(python=python or sys.executable, flags=INTERPRETER_FLAGS, code_root=CODE_ROOT)


def compile_backend_code(code_root: str = CODE_ROOT) -> list[str]:
    """Write the bytecode of the backend's modules (best effort: a read-only tree keeps what it has)."""
    import py_compile

    done = []
    for relative in BYTECODE:
        source = os.path.join(code_root, relative)
        try:
            py_compile.compile(source, doraise=True)
        except (OSError, py_compile.PyCompileError) as exc:
            log.warning("cannot write the bytecode of %s (%s); the backend compiles it on every job", source, exc)
        else:
            done.append(source)
    return done


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
    compile_backend_code()
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
    try:
        lp_gid = grp.getgrnam("lp").gr_gid
    except KeyError:
        lp_gid = 0
    if ca_file:
        # A copy beside the credentials: the backend runs as lp, which may not reach the original.
        ca_copy = folder / "ca.pem"
        _write_for_lp(ca_copy, Path(ca_file).read_bytes(), lp_gid)
        ca_file = str(ca_copy)
    path = folder / config.CONF_RELATIVE.name
    _write_for_lp(path, config.render(token.strip(), ca_file).encode(), lp_gid)
    return path


def _write_for_lp(path: Path, data: bytes, lp_gid: int) -> None:
    """`data` into `path`, root:lp 0640, replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chown(tmp, 0, lp_gid)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


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


# --- print server: printing to the shared queue needs an authenticated user (issue 9) -----------------

POLICY = "pullprint"
_BEGIN = "# BEGIN pullprint policy (written by `pullprint queue install --role print-server`; replaced there)"
_END = "# END pullprint policy"
# The operations that put a job (and its owner's name) into the queue, and those that change a job.
_SUBMIT_OPS = "Create-Job Print-Job Print-URI Validate-Job Validate-Document Send-Document Send-URI"
_JOB_OPS = ("Cancel-Job Cancel-My-Jobs Close-Job Hold-Job Release-Job Restart-Job Purge-Jobs Set-Job-Attributes "
            "Reprocess-Job Cancel-Current-Job Suspend-Current-Job Resume-Job CUPS-Move-Job CUPS-Get-Document "
            "CUPS-Authenticate-Job Create-Job-Subscriptions Renew-Subscription Cancel-Subscription Get-Notifications")
_ADMIN_OPS = ("Pause-Printer Resume-Printer Enable-Printer Disable-Printer Pause-Printer-After-Current-Job "
              "Hold-New-Jobs Release-Held-New-Jobs Deactivate-Printer Activate-Printer Restart-Printer "
              "Shutdown-Printer Startup-Printer Promote-Job Schedule-Job-After Cancel-Jobs CUPS-Accept-Jobs "
              "CUPS-Reject-Jobs CUPS-Add-Modify-Printer CUPS-Delete-Printer CUPS-Add-Modify-Class "
              "CUPS-Delete-Class CUPS-Set-Default")
POLICY_BLOCK = f"""{_BEGIN}
# Printing to the pullprint queue needs an authenticated user; cupsd then makes that user the job's
# owner (job-originating-user-name, the backend's argv[2]) whatever requesting-user-name the client
# sent. AuthType Default is cupsd.conf's DefaultAuthType: Basic checks the password with PAM (the
# "cups" PAM service), Negotiate uses Kerberos (a keytab for HTTP/host on the print server). Local
# users on cupsd's domain socket are known by PeerCred (lp as that user: no password asked).
# Encryption Required: a remote client must use TLS (cupsd's own, ServerKeychain) before it may
# send a password; cupsd answers 426 Upgrade Required otherwise. Local connections are exempt.
<Policy {POLICY}>
  JobPrivateAccess default
  JobPrivateValues default
  SubscriptionPrivateAccess default
  SubscriptionPrivateValues default
  <Limit {_SUBMIT_OPS}>
    AuthType Default
    Require valid-user
    Encryption Required
    Order deny,allow
  </Limit>
  <Limit {_JOB_OPS}>
    AuthType Default
    Require user @OWNER @SYSTEM
    Encryption Required
    Order deny,allow
  </Limit>
  <Limit {_ADMIN_OPS}>
    AuthType Default
    Require user @SYSTEM
    Encryption Required
    Order deny,allow
  </Limit>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
{_END}
"""


def with_policy(cupsd_conf: str) -> str:
    """`cupsd_conf` with the pullprint policy block, added or replaced (idempotent)."""
    start, end = cupsd_conf.find(_BEGIN), cupsd_conf.find(_END)
    if start != -1 and end != -1:
        tail = cupsd_conf[end + len(_END):].lstrip("\n")
        return cupsd_conf[:start] + POLICY_BLOCK + tail
    return cupsd_conf.rstrip("\n") + "\n\n" + POLICY_BLOCK


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def _cupsd_http(cups_server: str | None, timeout: float = 10.0) -> tuple[http.client.HTTPConnection, dict[str, str]]:
    """An HTTP connection to cupsd and the headers that authenticate this process there.

    On cupsd's domain socket the process is known by its uid (PeerCred, what lpadmin uses as root);
    over TCP no credentials are sent (a private cupsd on loopback lets anyone administer it).
    """
    server = cups_server or os.environ.get("CUPS_SERVER") or "/run/cups/cups.sock"
    if server.startswith("/"):
        return _UnixHTTPConnection(server, timeout), {"Authorization": f"PeerCred {pwd.getpwuid(os.getuid()).pw_name}"}
    host, _, port = server.rpartition(":")
    if not (host and port.isdigit()):
        host, port = server, "631"
    return http.client.HTTPConnection(host, int(port), timeout=timeout), {}


def _conf_request(cups_server: str | None, method: str, body: bytes | None = None) -> bytes:
    conn, headers = _cupsd_http(cups_server)
    try:
        conn.request(method, "/admin/conf/cupsd.conf", body=body,
                     headers={**headers, "Content-Type": "application/octet-stream"} if body is not None else headers)
        answer = conn.getresponse()
        data = answer.read()
    except OSError as exc:
        raise RuntimeError(f"cannot reach cupsd at {cups_server or 'the default socket'}: {exc}") from None
    finally:
        conn.close()
    if answer.status not in (200, 201):
        raise RuntimeError(f"cupsd refused {method} /admin/conf/cupsd.conf ({answer.status} {answer.reason}); "
                           f"run this as root on the print server, through cupsd's domain socket "
                           f"(--cups-server /run/cups/cups.sock)")
    return data


def install_policy(cups_server: str | None = None, *, timeout: float = 30.0) -> bool:
    """Put the pullprint policy into cupsd.conf through cupsd itself (as cupsctl does); True when it changed.

    cupsd checks and writes the file and restarts its scheduler; this waits until it answers again.
    """
    current = _conf_request(cups_server, "GET").decode("utf-8", "replace")
    wanted = with_policy(current)
    if wanted == current:
        return False
    _conf_request(cups_server, "PUT", wanted.encode())
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.5)  # cupsd restarts after the answer; give it the moment it takes
        try:
            if POLICY_BLOCK.splitlines()[0] in _conf_request(cups_server, "GET").decode("utf-8", "replace"):
                return True
        except RuntimeError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("cupsd did not come back after taking the pullprint policy")


def require_authentication(connection, names: list[str]) -> None:
    """Make `names` (the queue, or a class and its members) use the pullprint policy."""
    for name in names:
        connection.setPrinterOpPolicy(name, POLICY)


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
