"""The collector's outbound HTTP client, to peers and the analyst: cluster-token auth, tight timeouts, errors mapped."""

from __future__ import annotations

import threading
from typing import Any

import requests

from pullprint.credentials import cluster_auth_header
from pullprint.errors import PullprintError


class Unreachable(PullprintError):
    """The other node did not answer in time, refused the connection, or answered 5xx.

    `maybe_acted` is False only when the request certainly never reached the other node
    (connection refused or connect timeout), so it is safe to send it somewhere else. Each client
    raises its own kind (`PeerUnreachable`, `AnalystUnavailable`), so a caller can tell them apart.
    """

    status = 503
    maybe_acted = True


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and (
        "NewConnectionError" in text or "Connection refused" in text)


class NodeClient:
    """Calls another pullprint node. One `requests.Session` per thread (sessions are not shared).

    `unreachable`: the error raised for transport failures and 5xx answers.
    """

    def __init__(self, cluster_token: str, timeout: float, unreachable: type[Unreachable] = Unreachable) -> None:
        self._headers = cluster_auth_header(cluster_token)
        self.timeout = timeout
        self.unreachable = unreachable
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            self._local.session = session
        return session

    def request(self, method: str, url: str, *, timeout: float | tuple[float, float] | None = None,
                ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> requests.Response:
        """Send a request; raise `self.unreachable` for transport failures and 5xx, PullprintError for 4xx."""
        try:
            response = self._session().request(method, url, timeout=timeout or self.timeout, **kwargs)
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
