"""HAProxy's runtime API over its admin UNIX socket: drain, ready, maint and server states.

One command per connection (HAProxy's non-interactive mode: it answers and closes), spoken with
the standard library's socket module, so no socat is needed at run time.
"""

from __future__ import annotations

import csv
import io
import socket
import time

from lb.haproxy import BACKEND
from pullprint.errors import PullprintError, Unavailable

# States reported by server_states(): what HAProxy does with new requests for that server.
UP, DOWN, DRAIN, MAINT, NOCHECK = "UP", "DOWN", "DRAIN", "MAINT", "NOCHECK"


def command(socket_path: str, line: str, *, timeout: float = 5.0) -> str:
    """Send one runtime-API command and return HAProxy's whole answer."""
    if "\n" in line or ";" in line:
        raise PullprintError("bad-lb-command", f"one command at a time, got {line!r}")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise Unavailable("lb-unreachable", f"cannot talk to HAProxy on {socket_path}: {exc}") from None
    return b"".join(chunks).decode(errors="replace")


def _set_state(socket_path: str, backend: str, server: str, state: str) -> None:
    answer = command(socket_path, f"set server {backend}/{server} state {state}").strip()
    # Success is an empty answer; anything else is HAProxy's reason ("No such server.", ...).
    if answer:
        raise PullprintError("lb-refused", f"HAProxy refused to set {backend}/{server} to {state}: {answer}")


def drain(socket_path: str, server: str, backend: str = BACKEND) -> None:
    """Send no new requests to `server`; requests in flight (uploads, releases) finish normally."""
    _set_state(socket_path, backend, server, "drain")


def ready(socket_path: str, server: str, backend: str = BACKEND) -> None:
    """Put `server` back into rotation (undoes drain and maint; health checks still apply)."""
    _set_state(socket_path, backend, server, "ready")


def maint(socket_path: str, server: str, backend: str = BACKEND) -> None:
    """Take `server` out completely (no traffic, no health checks) for maintenance."""
    _set_state(socket_path, backend, server, "maint")


def _normalise(status: str) -> str:
    # HAProxy writes "UP", "UP 1/2" (going down), "DOWN 1/2" (coming up), "DRAIN",
    # "MAINT", "MAINT (via be/s)", "MAINT (resolution)", "no check", "NOLB".
    word = status.split(" ", 1)[0].upper()
    if status.lower() == "no check":
        return NOCHECK
    return word


def stat_rows(socket_path: str) -> list[dict[str, str]]:
    """`show stat` as dictionaries (one per frontend, backend and server)."""
    text = command(socket_path, "show stat")
    if not text.startswith("# "):
        raise PullprintError("lb-refused", f"unexpected answer to show stat: {text[:200]!r}")
    return list(csv.DictReader(io.StringIO(text[2:])))


def server_states(socket_path: str, backend: str = BACKEND) -> dict[str, str]:
    """{server: UP | DOWN | DRAIN | MAINT | NOCHECK | NOLB} for every server of `backend`.

    "UP 1/2" (one failed check, not yet down) counts as UP: HAProxy still sends it requests.
    """
    return {row["svname"]: _normalise(row["status"]) for row in stat_rows(socket_path)
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}


def wait_for_state(socket_path: str, server: str, state: str, *, backend: str = BACKEND,
                   timeout: float = 10.0, interval: float = 0.02) -> float:
    """Wait until `server` is in `state`; return the seconds it took, raise TimeoutError otherwise."""
    start = time.monotonic()
    seen = None
    while True:
        seen = server_states(socket_path, backend).get(server)
        if seen is None:
            raise PullprintError("lb-refused", f"no server {server!r} in backend {backend}")
        if seen == state:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{backend}/{server} still {seen} after {timeout:.1f} s (wanted {state})")
        time.sleep(interval)
