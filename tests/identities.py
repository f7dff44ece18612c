"""Cluster certificates for tests that call a Flask app directly (its test client stands in for mutual TLS).

One throwaway CA per test run; `as_node(role, name)` is the environ a test client passes to act as
that node (the key nodeserver.worker sets from the TLS handshake in production).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from nodeserver.peer import PEER_CERT
from pullprint.pki import Authority


@functools.cache
def authority() -> Authority:
    ca = Authority(Path(tempfile.mkdtemp(prefix="pullprint-test-ca-")))
    ca.init("pullprint test CA")
    return ca


@functools.cache
def certificate(role: str, name: str) -> bytes:
    """The DER certificate of `role`:`name` from the test CA."""
    cert_path, _ = authority().issue(role, name, ["127.0.0.1"])
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(Encoding.DER)


def as_node(role: str = "admin", name: str = "operator") -> dict[str, bytes]:
    """`environ_base` for a Flask test client calling as `role`:`name`."""
    return {PEER_CERT: certificate(role, name)}
