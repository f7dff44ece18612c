"""The collector's Redis connection: mutual TLS to the cluster's Redis, an ACL user and its password.

The server must show a certificate of role ``redis`` from the cluster CA (checked after the
handshake, beside the host name), so a node that only holds some other cluster certificate cannot
stand in for Redis. The password never sits in the URL (`connect` refuses one there), in argv or in
a log line: it comes from ``collector.redis_password`` (``PULLPRINT_COLLECTOR_REDIS_PASSWORD_FILE``).
Each collector has its own ACL user (`username_for`), so one collector is revoked at Redis by deleting
its user, without touching the others' passwords.

Inside a request's deadline (nodeserver.client.deadline: a login's), each Redis read and TLS handshake
waits at most what is left of it, so a slow Redis cannot make the request outlast its budget. The
calls a request can do without go through `optional`: once one failed or answered slowly, those made
inside a deadline skip Redis for a moment, process-wide.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.connection import SSLConnection
from redis.utils import SENTINEL

from nodeserver.client import in_deadline, time_left
from pullprint import pki
from pullprint.errors import PullprintError
from pullprint.tls import TlsFiles, client_context

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 0.5  # seconds, for a connection made without a socket timeout


class _ClusterRedisConnection(SSLConnection):
    """An SSLConnection that uses the node's own TLS context (CA, certificate, CRL) and checks the server's role."""

    def __init__(self, *, tls_files: TlsFiles, **kwargs: Any) -> None:
        self.tls_files = tls_files
        super().__init__(**kwargs)

    def _left(self) -> float:
        """The socket timeout, cut to what the current deadline leaves; none left is a timeout."""
        left = time_left(self.socket_timeout or DEFAULT_TIMEOUT)
        if left <= 0.005:
            raise redis.exceptions.TimeoutError("no time left in this request's deadline for a Redis call")
        return left

    def read_response(self, disable_decoding: bool = False, *, timeout: Any = SENTINEL, **options: Any) -> Any:
        if timeout is SENTINEL and in_deadline():
            try:
                timeout = self._left()
            except redis.exceptions.TimeoutError:
                self.disconnect()  # the command went out: its answer must not be read as the next one's
                raise
        return super().read_response(disable_decoding, timeout=timeout, **options)

    def _wrap_socket_with_ssl(self, sock: socket.socket) -> ssl.SSLSocket:
        sock.settimeout(self._left())
        wrapped = client_context(self.tls_files).wrap_socket(sock, server_hostname=self.host)
        wrapped.settimeout(self.socket_timeout)
        der = wrapped.getpeercert(binary_form=True)
        identity = pki.identity_of(der) if der else None
        if identity is None or identity.role != "redis":
            wrapped.close()
            raise redis.exceptions.ConnectionError(
                f"{self.host}:{self.port} is not the cluster's Redis (its certificate says {identity or 'nothing'})")
        return wrapped


T = TypeVar("T")


class _Optional:
    """Process-wide: until when Redis is skipped for the calls a request can do without."""

    SKIP_SECONDS = 2.0  # after a failed or slow optional call
    SLOW_SECONDS = 0.2  # an answer slower than this counts as a failure (a congested link, a stalled Redis)
    skip_until = 0.0
    warned_at = 0.0


def optional(what: str, call: Callable[[], T]) -> T | None:
    """`call()`, a Redis call the request can do without (`what` names it in the log); None when it
    fails, or when it is skipped. Once one fails or answers in more than SLOW_SECONDS, the calls made
    inside a request's deadline (a login's) skip Redis in this process for SKIP_SECONDS: a dead or
    slow Redis costs such a request one call, not one per call. Others (background work) still ask."""
    started = time.monotonic()
    if started < _Optional.skip_until and in_deadline():
        return None
    try:
        answer = call()
    except Exception as exc:  # noqa: BLE001 - Redis away: the caller goes on without it
        _skip(what, type(exc).__name__)
        return None
    took = time.monotonic() - started
    if took > _Optional.SLOW_SECONDS:
        _skip(what, f"answered in {took:.2f} s")
    return answer


def _skip(what: str, why: str) -> None:
    now = time.monotonic()
    _Optional.skip_until = now + _Optional.SKIP_SECONDS
    if now - _Optional.warned_at > 60:
        _Optional.warned_at = now
        log.warning("redis unreachable or slow for the %s (%s): calls a request can do without skip it for "
                    "%.0f s at a time", what, why, _Optional.SKIP_SECONDS)


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
