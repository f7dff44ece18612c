"""Who is calling: the cluster identity in the caller's TLS certificate, and the client's address.

The gunicorn worker (`nodeserver.worker`) puts the DER certificate the caller presented into the
WSGI environ under `PEER_CERT`; Flask test clients set the same key to act as a node. Role checks
use `require`; `client_address` trusts ``X-Forwarded-For`` only from the load balancer's
certificate, never from anyone else.
"""

from __future__ import annotations

import functools

from flask import current_app, request

from pullprint.errors import Forbidden, Unauthorized
from pullprint.pki import Identity, identity_of

PEER_CERT = "pullprint.peer_cert"
INSECURE = "pullprint.insecure_plain_http"  # app.config key: no TLS, every caller is trusted


@functools.lru_cache(maxsize=256)
def _identity(der: bytes) -> Identity | None:
    return identity_of(der)


def current() -> Identity | None:
    """The identity of the node calling now, or None (no certificate, or not one of the cluster's)."""
    der = request.environ.get(PEER_CERT)
    return _identity(der) if der else None


def insecure() -> bool:
    return bool(current_app.config.get(INSECURE))


def require(*roles: str) -> Identity | None:
    """The caller's identity when its role is one of `roles`; 401 without a certificate, 403 for another role.

    On an app running with `insecure_plain_http` every caller passes (None is returned).
    """
    identity = current()
    if identity is None:
        if insecure():
            return None
        raise Unauthorized("unauthenticated", "this call needs a cluster certificate (mutual TLS)")
    if identity.role not in roles:
        raise Forbidden("forbidden", f"a {identity.role} certificate may not make this call "
                        f"(it needs: {', '.join(roles)})")
    return identity


def client_address() -> str:
    """The address of the client the request came from: the load balancer's X-Forwarded-For entry
    when the load balancer sent it, else the connection's own address."""
    identity = current()
    if identity is not None and identity.role == "lb":
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.remote_addr or "unknown"
