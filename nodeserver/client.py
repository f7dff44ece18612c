"""The HTTP client one pullprint node calls another with (collector → peer, collector → analyst,
analyst → collector): mutual TLS with the callee's identity checked, tight timeouts, errors mapped,
the current request id handed on, and the work's deadline kept (`deadline`)."""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from pullprint import log
from pullprint.errors import PullprintError
from pullprint.tls import TlsFiles, client_context


class Unreachable(PullprintError):
    """The other node did not answer in time, refused the connection, or answered 5xx.

    `maybe_acted` is False only when the request certainly never reached the other node
    (connection refused, connect timeout, a certificate refused), so it is safe to send it somewhere
    else. Each client raises its own kind (`PeerUnreachable`, `AnalystUnavailable`), so a caller can
    tell them apart.
    """

    status = 503
    maybe_acted = True


_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("pullprint_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every call made in this block (and in pool tasks it hands work to) ends within `seconds` of now
    in all: each call's timeout is cut to what is left, and a call with nothing left is not sent
    (it fails as unreachable, `maybe_acted` False). The collector's Redis reads are cut the same way
    (collector/redis_client.py). An inner block cannot extend an outer one."""
    end = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left(default: float) -> float:
    """What is left of the current deadline, at most `default` (`default` outside any deadline)."""
    end = _deadline.get()
    return default if end is None else max(0.0, min(default, end - time.monotonic()))


def in_deadline() -> bool:
    """Whether the current code runs inside a `deadline` block."""
    return _deadline.get() is not None


def _within_deadline(timeout: float | tuple[float, float]) -> float | tuple[float, float] | None:
    """`timeout` cut to the current deadline; None when nothing is left of it."""
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0.005:
        return None
    return (min(timeout[0], left), min(timeout[1], left)) if isinstance(timeout, tuple) else min(timeout, left)


# What a TLS error says when a certificate was refused, by us or by the callee's TLS layer: the
# request never reached the callee's application. Any other TLS error (an EOF, a cut record) may
# come after the request went out on a kept-open connection, from a callee killed mid-call.
_CERTIFICATE_REFUSED = ("CERTIFICATE_VERIFY_FAILED", "CertificateError(", "ALERT_")


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return any(sign in text for sign in _CERTIFICATE_REFUSED)
    return isinstance(exc, requests.ConnectionError) and (
        "NewConnectionError" in text or "Connection refused" in text)


class _ClusterAdapter(HTTPAdapter):
    """Connections in the cluster's client context that accept only a server certificate naming `identity`."""

    def __init__(self, context: ssl.SSLContext, identity: str) -> None:
        self._context, self._identity = context, identity
        super().__init__(pool_maxsize=NodeClient.POOL_SIZE)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        kwargs["assert_hostname"] = self._identity  # e.g. c2.collector.pullprint: who it is, not where
        super().init_poolmanager(*args, **kwargs)


class NodeClient:
    """Calls another pullprint node over mutual TLS (`tls`; None: plain HTTP, insecure_plain_http).

    Each call names the identity the callee's certificate must carry (`pullprint.pki.identity_dns`),
    so an address taken from anywhere can only ever reach that node. One `requests.Session` per
    identity, shared by every thread: its pool keeps up to `POOL_SIZE` open connections to that
    node, and whichever thread calls next takes an idle one, so a call rarely pays a TLS handshake
    (a full mutual-TLS handshake costs more CPU than the call itself). Rebuilt when the TLS files
    change (a new CRL). `unreachable`: the error raised for transport failures and 5xx answers.
    """

    POOL_SIZE = 32

    def __init__(self, tls: TlsFiles | None, timeout: float, unreachable: type[Unreachable] = Unreachable) -> None:
        self.tls = tls
        self.timeout = timeout
        self.unreachable = unreachable
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[ssl.SSLContext | None, requests.Session]] = {}

    def _session(self, identity: str) -> requests.Session:
        context = client_context(self.tls) if self.tls is not None else None
        known = self._sessions.get(identity)
        if known is not None and known[0] is context:
            return known[1]
        with self._lock:
            known = self._sessions.get(identity)
            if known is not None and known[0] is context:
                return known[1]
            # A replaced session is left to close when the calls still using it are done with it.
            session = requests.Session()
            session.trust_env = False  # no proxies or CA bundles from the environment between nodes
            adapter = (_ClusterAdapter(context, identity) if context is not None
                       else HTTPAdapter(pool_maxsize=self.POOL_SIZE))
            session.mount("https://" if context is not None else "http://", adapter)
            self._sessions[identity] = (context, session)
            return session

    def request(self, method: str, url: str, *, identity: str, timeout: float | tuple[float, float] | None = None,
                ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> requests.Response:
        """Send a request to the node `identity`; raise `self.unreachable` for transport failures (a wrong
        certificate among them) and 5xx, PullprintError for 4xx."""
        if self.tls is not None and not url.startswith("https://"):
            error = self.unreachable("not-tls", f"{method} {url}: node calls go over https only")
            error.maybe_acted = False
            raise error
        limit = _within_deadline(timeout or self.timeout)
        if limit is None:
            error = self.unreachable("deadline", f"{method} {url}: not sent, no time is left of this work's deadline")
            error.maybe_acted = False
            raise error
        try:
            headers = {**log.outgoing_headers(), **(kwargs.pop("headers", None) or {})}
            response = self._session(identity).request(method, url, timeout=limit, headers=headers, **kwargs)
        except requests.RequestException as exc:
            error = self.unreachable("node-unreachable", f"{method} {url}: {type(exc).__name__}")
            error.maybe_acted = not _never_sent(exc)
            raise error from None
        if response.status_code in ok:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("error", f"http-{response.status_code}") if isinstance(body, dict) else "error"
        message = body.get("message", response.reason) if isinstance(body, dict) else response.reason
        if response.status_code >= 500:
            raise self.unreachable(code, f"{method} {url}: {response.status_code} {message}")
        extra = {k: v for k, v in body.items() if k not in ("error", "message")} if isinstance(body, dict) else {}
        raise PullprintError(code, message, status=response.status_code, **extra)

    def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        return dict(self.request(method, url, **kwargs).json())
