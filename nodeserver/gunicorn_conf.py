"""Gunicorn settings both services load (``--config python:nodeserver.gunicorn_conf``).

With ``--certfile``/``--keyfile``/``--ca-certs`` given, every connection is wrapped in the cluster's
server context: client certificate required, CRL (``PULLPRINT_TLS_CRL_FILE``) re-read when it changes.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

from pullprint.tls import TlsFiles, server_context

worker_class = "nodeserver.worker.PeerCertWorker"
# Gunicorn 25.1+ opens a control socket (worker add/kill, reload) at one path per user's home,
# $HOME/.gunicorn/gunicorn.ctl, which every master on the host would share, the last one started
# taking it. Nothing here uses it: services are stopped and restarted by their PID or their unit.
# (Older gunicorns ignore the name.)
control_socket_disable = True


def ssl_context(conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    files = TlsFiles(conf.ca_certs, conf.certfile, conf.keyfile, os.environ.get("PULLPRINT_TLS_CRL_FILE", ""))
    return server_context(files, ssl.VerifyMode(conf.cert_reqs))


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits leaves its Prometheus figures behind for the others to sum; its live
    gauges go (prometheus_client multiprocess mode, collector/metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
