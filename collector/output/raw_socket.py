"""socket://host:port (AppSocket / JetDirect, port 9100): the bytes straight to the printer.

Copies are made by sending the document again on the same connection (what the CUPS socket
backend does). Print options cannot be carried on a raw connection; they must be in the document.
"""

from __future__ import annotations

import contextlib
import socket
import time
from urllib.parse import urlsplit

from collector.output.base import DEFAULT_TIMEOUT, DeliveryResult, OutputJob

DEFAULT_PORT = 9100


class RawSocketOutput:
    """socket:// printers: the bytes straight to the printer, the copies one after another."""

    def __init__(self, *, connect_timeout: float = 5.0, write_timeout: float = 30.0,
                 close_wait: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        # A printer that accepts and then stops reading (jam, paper out on some models) must not hold
        # a release worker forever: no progress for this long fails the delivery.
        self.write_timeout = write_timeout
        self.close_wait = close_wait

    def send(self, job: OutputJob, uri: str, *, timeout: float = DEFAULT_TIMEOUT) -> DeliveryResult:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            return DeliveryResult("not-sent", f"bad printer URI {uri!r}")
        deadline = time.monotonic() + timeout
        try:
            sock = socket.create_connection((host, port), timeout=min(self.connect_timeout, timeout))
        except OSError as exc:
            return DeliveryResult("not-sent", f"cannot connect to {host}:{port}: {exc.strerror or exc}")
        sent = 0
        total = job.size * max(job.copies, 1)
        try:
            for _copy in range(max(job.copies, 1)):
                try:
                    stream = job.open_stream()
                except OSError as exc:
                    return self._broken(sent, f"cannot read the job: {exc}")
                for chunk in stream:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return DeliveryResult("failed", f"gave up after {timeout:g} s with {sent} of {total} "
                                                        f"bytes sent", sent)
                    sock.settimeout(min(self.write_timeout, remaining))
                    sock.sendall(chunk)
                    sent += len(chunk)
            sock.shutdown(socket.SHUT_WR)  # "end of job" for the printer
            return DeliveryResult("delivered", self._wait_for_close(sock, deadline), sent)
        except TimeoutError:
            return DeliveryResult("failed", f"printer {host}:{port} stopped accepting data after {sent} of "
                                            f"{total} bytes (no progress for {self.write_timeout:g} s)", sent)
        except OSError as exc:
            return DeliveryResult("failed", f"connection to {host}:{port} lost after {sent} of {total} bytes: "
                                            f"{exc.strerror or exc}", sent)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _broken(self, sent: int, detail: str) -> DeliveryResult:
        # An empty connection prints nothing, so a job that could not be read at all was not sent.
        return DeliveryResult("not-sent" if sent == 0 else "failed", detail, sent)

    def _wait_for_close(self, sock: socket.socket, deadline: float) -> str:
        """Read (and drop) back-channel data until the printer closes; printers close when done."""
        sock.settimeout(max(0.01, min(self.close_wait, deadline - time.monotonic())))
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return "all bytes sent; the printer kept the connection open"
        except OSError as exc:
            return f"all bytes sent; the printer reset the connection ({exc.strerror or exc})"
        return "all bytes sent; the printer closed the connection"
