"""A gunicorn gthread worker that hands the app the certificate each TLS client presented."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from nodeserver.peer import PEER_CERT

_current = threading.local()


def _with_peer(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.pop(PEER_CERT, None)  # only the worker may set it
        der = getattr(_current, "der", None)
        if der:
            environ[PEER_CERT] = der
        return app(environ, start_response)
    return wsgi


class PeerCertWorker(ThreadWorker):
    """`handle_request` runs in the thread that then calls the app: the certificate rides a thread-local."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: Callable[..., Iterable[bytes]] = self.wsgi  # type: ignore[has-type]
        self.wsgi = _with_peer(app)

    def handle_request(self, req: Any, conn: Any) -> Any:
        sock = conn.sock
        _current.der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        try:
            return super().handle_request(req, conn)
        finally:
            _current.der = None
