"""The collector's Redis connection: mutual TLS to the cluster's Redis, an ACL user and its password.

The server must show a certificate of role ``redis`` from the cluster CA (checked after the
handshake, beside the host name), so a node that only holds some other cluster certificate cannot
stand in for Redis. The password never sits in the URL (`connect` refuses one there), in argv or in
a log line: it comes from ``collector.redis_password`` (``PULLPRINT_COLLECTOR_REDIS_PASSWORD_FILE``).
Each collector has its own ACL user (`username_for`), so one collector is revoked at Redis by deleting
its user, without touching the others' passwords.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.connection import SSLConnection

from pullprint import pki
from pullprint.errors import PullprintError
from pullprint.tls import TlsFiles, client_context


class _ClusterRedisConnection(SSLConnection):
    """An SSLConnection that uses the node's own TLS context (CA, certificate, CRL) and checks the server's role."""

    def __init__(self, *, tls_files: TlsFiles, **kwargs: Any) -> None:
        self.tls_files = tls_files
        super().__init__(**kwargs)

    def _wrap_socket_with_ssl(self, sock: socket.socket) -> ssl.SSLSocket:
        wrapped = client_context(self.tls_files).wrap_socket(sock, server_hostname=self.host)
        der = wrapped.getpeercert(binary_form=True)
        identity = pki.identity_of(der) if der else None
        if identity is None or identity.role != "redis":
            wrapped.close()
            raise redis.exceptions.ConnectionError(
                f"{self.host}:{self.port} is not the cluster's Redis (its certificate says {identity or 'nothing'})")
        return wrapped


def username_for(collector_id: str) -> str:
    """Collector `collector_id`'s own Redis ACL user (the localcluster's Redis and the Ansible role make it)."""
    return f"collector-{collector_id}"


def connect(url: str, *, username: str = "", password: str = "", tls: TlsFiles | None = None,
            **options: Any) -> redis.Redis:
    """A client for `url`: ``rediss://host:port/db`` with `tls` (mutual TLS), or plain ``redis://`` / ``unix://``
    (only for an explicitly insecure trial). `options` are redis-py connection options (timeouts, decode_responses)."""
    parts = urlsplit(url)
    if parts.password:
        raise PullprintError("bad-config", "the Redis URL must not carry a password (give it as redis_password)",
                             status=500)
    credentials: dict[str, Any] = {"username": username or (unquote(parts.username) if parts.username else None),
                                   "password": password or None}
    if parts.scheme != "rediss":
        return redis.Redis.from_url(url, **credentials, **options)
    if tls is None:
        raise PullprintError("bad-config", "a rediss:// Redis needs this node's TLS files (ca_file, cert_file, "
                             "key_file)", status=500)
    db = int(parts.path.strip("/") or 0)
    pool = redis.ConnectionPool(connection_class=_ClusterRedisConnection, tls_files=tls, host=parts.hostname,
                                port=parts.port or 6379, db=db, **credentials, **options)
    return redis.Redis(connection_pool=pool)
