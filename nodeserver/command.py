"""The gunicorn command line of a pullprint service: gthread workers, mutual TLS, the shared settings file."""

from __future__ import annotations

import sys

from pullprint.tls import TlsFiles

CRL_ENV = "PULLPRINT_TLS_CRL_FILE"  # read by nodeserver.gunicorn_conf in every worker


def gunicorn_command(app: str, *, bind: str, workers: int, threads: int, tls: TlsFiles | None,
                     extra: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """argv and the environment additions that serve `app` ("module:factory()") on `bind`.

    With `tls`, every connection must present a certificate from the cluster CA (``--cert-reqs 2``
    is CERT_REQUIRED); the CRL is re-read by the worker when it changes. Without it (the loudly
    named insecure_plain_http), plain HTTP.
    """
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:nodeserver.gunicorn_conf", "--bind", bind,
            "--workers", str(workers), "--threads", str(threads), "--graceful-timeout", "10",
            "--access-logfile", "-", "--logger-class", "nodeserver.access_log.RedactingLogger", *extra]
    env: dict[str, str] = {}
    if tls is not None:
        argv += ["--certfile", tls.cert_file, "--keyfile", tls.key_file, "--ca-certs", tls.ca_file,
                 "--cert-reqs", "2"]
        env[CRL_ENV] = tls.crl_file
    return [*argv, app], env
