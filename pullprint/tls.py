"""TLS contexts for every pullprint process: mutual TLS with the cluster CA, the CRL re-read when it changes.

`TlsFiles` names a node's CA, certificate, key and CRL. `server_context` and `client_context`
hand out an `ssl.SSLContext` that is rebuilt when one of those files changes (checked at most once
a second), so a revocation reaches running servers and clients without a restart.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from dataclasses import dataclass

from pullprint.errors import PullprintError


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str
    cert_file: str
    key_file: str
    crl_file: str = ""

    def problems(self, section: str) -> list[str]:
        found = []
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if not path:
                found.append(f"{section}.{name} is not set (the cluster CA, this node's certificate and key; "
                             f"see `pullprint ca`), or set {section}.insecure_plain_http")
            elif not os.access(path, os.R_OK):
                found.append(f"{section}.{name}: cannot read {path}")
        if self.crl_file and not os.access(self.crl_file, os.R_OK):
            found.append(f"{section}.crl_file: cannot read {self.crl_file}")
        return found


def _stamp(files: TlsFiles) -> tuple[float, ...]:
    stamps = []
    for path in (files.ca_file, files.cert_file, files.key_file, files.crl_file):
        try:
            stamps.append(os.stat(path).st_mtime) if path else stamps.append(0.0)
        except OSError:
            stamps.append(-1.0)
    return tuple(stamps)


def _build(files: TlsFiles, purpose: ssl.Purpose, verify_mode: ssl.VerifyMode) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(purpose, cafile=files.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(files.cert_file, files.key_file)
        if files.crl_file:
            context.load_verify_locations(cafile=files.crl_file)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ssl.SSLError) as exc:
        raise PullprintError("tls-config", f"cannot load the TLS files {files}: {exc}") from None
    context.verify_mode = verify_mode
    if purpose is ssl.Purpose.SERVER_AUTH:
        context.check_hostname = True  # callers also check the peer's cluster identity (outbound.py)
    return context


class _Cache:
    def __init__(self, purpose: ssl.Purpose) -> None:
        self.purpose = purpose
        self.lock = threading.Lock()
        self.entries: dict[tuple[TlsFiles, ssl.VerifyMode], tuple[tuple[float, ...], float, ssl.SSLContext]] = {}

    def get(self, files: TlsFiles, verify_mode: ssl.VerifyMode = ssl.CERT_REQUIRED) -> ssl.SSLContext:
        now = time.monotonic()
        key = (files, verify_mode)
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None and now - entry[1] < 1.0:
                return entry[2]
            stamp = _stamp(files)
            if entry is not None and entry[0] == stamp:
                self.entries[key] = (stamp, now, entry[2])
                return entry[2]
            context = _build(files, self.purpose, verify_mode)
            self.entries[key] = (stamp, now, context)
            return context


_servers = _Cache(ssl.Purpose.CLIENT_AUTH)
_clients = _Cache(ssl.Purpose.SERVER_AUTH)


def server_context(files: TlsFiles, client_certificate: ssl.VerifyMode = ssl.CERT_REQUIRED) -> ssl.SSLContext:
    """The context a server wraps each new connection in: a client certificate, required (or optional:
    checked when one is shown), verified against the CA and the CRL."""
    return _servers.get(files, client_certificate)


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """The context a node calls another with: presents its certificate, verifies the server's and its CRL."""
    return _clients.get(files)
