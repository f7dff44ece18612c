"""The gunicorn command line of a pullprint service: gthread workers, mutual TLS, the shared settings file."""

from __future__ import annotations

import sys

from pullprint.tls import TlsFiles

CRL_ENV = "PULLPRINT_TLS_CRL_FILE"  # read by nodeserver.gunicorn_conf in every worker
KEEP_ALIVE_SECONDS = 75


def gunicorn_command(app: str, *, bind: str, workers: int, threads: int, tls: TlsFiles | None,
                     client_certificate: str = "required",
                     extra: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """argv and the environment additions that serve `app` ("module:factory()") on `bind`.

    With `tls`, a client certificate is verified against the cluster CA and its CRL (re-read by
    the worker when it changes). `client_certificate` "required": no certificate, no connection
    (CERT_REQUIRED, the collectors); "optional": a connection without one is served but the app
    refuses its API calls (CERT_OPTIONAL, the analyst, whose console is for browsers with a password).
    Without `tls` (the loudly named insecure_plain_http), plain HTTP.
    """
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:nodeserver.gunicorn_conf", "--bind", bind,
            "--workers", str(workers), "--threads", str(threads), "--graceful-timeout", "10",
            # Keep idle connections from the other nodes and HAProxy open (gunicorn's default is 2 s):
            # each new one costs a mutual-TLS handshake, more CPU than the request it carries.
            "--keep-alive", str(KEEP_ALIVE_SECONDS),
            "--access-logfile", "-", "--logger-class", "nodeserver.access_log.RedactingLogger", *extra]
    env: dict[str, str] = {}
    if tls is not None:
        argv += ["--certfile", tls.cert_file, "--keyfile", tls.key_file, "--ca-certs", tls.ca_file,
                 "--cert-reqs", {"required": "2", "optional": "1"}[client_certificate]]
        env[CRL_ENV] = tls.crl_file
    return [*argv, app], env
