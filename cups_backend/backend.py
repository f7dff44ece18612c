"""The ``pullprint`` CUPS backend: stream one job to the collectors behind the load balancer (backend(7)).

cupsd runs it once per job on the shared queue as::

    pullprint                                      discovery: print device lines, exit 0
    pullprint job-id user title copies options     6 args: data on stdin (filters made the copies)
    pullprint job-id user title copies options f   7 args: data in file f (the cluster makes copies)

The device URI comes from ``DEVICE_URI`` (a script never sees the real argv[0]):
``pullprint://host:port/`` is HTTP, ``pullprints://host:port/`` HTTPS with certificate checks. The
submit token (and an optional CA bundle) come from ``$CUPS_SERVERROOT/pullprint/backend.conf``.

Exit codes, and why:

- 201/200 from the collector → OK: the job is durable in the cluster.
- other 4xx (bad input, too large) → CANCEL: the same bytes will be refused again; retrying would
  loop forever, so the job is canceled and the ERROR line says why.
- 401 (this host's credential is wrong or revoked), 403/404/405, no credentials, bad URI → HOLD:
  the queue is misconfigured; the job waits (held, not lost) until an operator fixes it and releases
  the job. (Not AUTH_REQUIRED: that asks the *user* for a password, which would not help.)
- 400 too-many-copies, 409 quota-exceeded → CANCEL, with the collector's sentence as the ERROR line.
- connection refused/reset/timeout, 408/429/5xx → retried here a few times with backoff within a
  bounded budget (each try is a fresh connection through the load balancer, which picks a live
  collector), then RETRY: cupsd holds the job and runs it again after JobRetryInterval.
- SIGTERM (cupsd cancels or holds the job, or shuts down) → the upload stops at once and the
  backend exits OK. cupsd has already decided the job's fate before it signals; any other code would
  feed the queue's error policy (retry-job would resurrect a job the user canceled, stop-printer
  would stop the queue for everybody). The collector never answered 201, so it discards the
  truncated upload and no job exists in the cluster.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO, TextIO
from urllib.parse import quote, urlsplit

from cups_backend import config
from cups_backend.exitcodes import BackendExit
from pullprint.errors import BadRequest
from pullprint.wire import API, MAX_COPIES, JobSubmission, decode_options

SCHEMES = {"pullprint": "http", "pullprints": "https"}
DISCOVERY = {
    "pullprint": 'network pullprint "Unknown" "pullprint secure release cluster"',
    "pullprints": 'network pullprints "Unknown" "pullprint secure release cluster (TLS)"',
}
CHUNK = 64 * 1024
MAX_MESSAGE = 2047  # CUPS_MAX_MESSAGE, prefix and newline included
_KEY_CHARS = re.compile(r"[^A-Za-z0-9:._\-]")
# Answers that mean "this queue is misconfigured", not "this job is bad".
_HOLD_STATUSES = {401, 403, 404, 405}
_RETRY_STATUSES = {408, 429}

USAGE = ("Usage: pullprint job-id user title copies options [file]\n"
         "(cupsd runs this backend; with no arguments it lists the devices it offers)")


class JobCanceled(Exception):
    """cupsd sent SIGTERM: the job was canceled, held, or cupsd is stopping."""


class TransientError(Exception):
    """This try failed in a way another try (through the load balancer) may not."""


class Status:
    """The message channel to cupsd (stderr), one prefixed line per message; never shows the token."""

    def __init__(self, stream: TextIO, secrets: tuple[str, ...] = ()) -> None:
        self.stream = stream
        self.secrets = secrets

    def line(self, prefix: str, text: str) -> None:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        text = " ".join(text.split())  # one line, whatever the collector sent
        message = f"{prefix}: {text}"
        encoded = message.encode("utf-8", "replace")[: MAX_MESSAGE - 1]
        self.stream.write(encoded.decode("utf-8", "ignore") + "\n")
        self.stream.flush()

    def info(self, text: str) -> None:
        self.line("INFO", text)

    def error(self, text: str) -> None:
        self.line("ERROR", text)

    def warning(self, text: str) -> None:
        self.line("WARNING", text)

    def debug(self, text: str) -> None:
        self.line("DEBUG", text)

    def state(self, change: str) -> None:
        self.line("STATE", change)


@dataclass(frozen=True)
class Target:
    """Where the job goes: parsed from DEVICE_URI."""

    scheme: str  # http | https
    host: str
    port: int
    base_path: str

    @property
    def submit_path(self) -> str:
        return f"{self.base_path}{API}/jobs"

    def describe(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.submit_path}"


class ConfigurationProblem(Exception):
    """The queue or its credentials are wrong: hold the job for an operator."""


def parse_device_uri(uri: str, status: Status) -> Target:
    try:
        parts = urlsplit(uri)
    except ValueError:  # an unclosed "[" (Invalid IPv6 URL)
        raise ConfigurationProblem("device URI is malformed") from None
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigurationProblem(f"device URI scheme {parts.scheme!r} is not pullprint:// or pullprints://")
    if not parts.hostname:
        raise ConfigurationProblem("device URI has no host")
    if parts.username or parts.password:
        status.warning("credentials in the device URI are ignored; the token comes from backend.conf")
    try:
        port = parts.port if parts.port is not None else (443 if scheme == "https" else 80)
    except ValueError:
        raise ConfigurationProblem("device URI has a bad port") from None
    if port == 0:
        raise ConfigurationProblem("device URI has a bad port")
    return Target(scheme=scheme, host=parts.hostname, port=port, base_path=parts.path.rstrip("/"))


def parse_options(text: str) -> dict[str, str]:
    """argv[5]: cupsd backslash-escapes spaces and quotes in values; then the wire's own rules apply."""
    try:
        items = shlex.split(text)
    except ValueError:
        items = text.split()
    encoded = []
    for item in items:
        name, sep, value = item.partition("=")
        encoded.append(f"{name}={quote(value, safe='')}" if sep else name)
    return decode_options(" ".join(encoded))


def _header_text(text: str) -> str:
    """Printable ASCII only: what http.client cannot send (a newline, a non-latin-1 letter) would raise there."""
    return "".join(c for c in text if " " <= c <= "~")


def build_submission(argv: list[str], environ: Mapping[str, str]) -> JobSubmission:
    job_id, owner, title, copies_text, options_text = argv[1:6]
    options = parse_options(options_text)
    copies = 1
    if len(argv) == 7:  # raw queue: nothing made copies yet; the cluster makes them at release
        try:
            copies = min(max(int(copies_text), 1), MAX_COPIES)
        except ValueError:
            copies = 1
    key = _KEY_CHARS.sub("_", options.get("job-uuid", ""))[:128]
    if not key:
        printer = environ.get("PRINTER", "queue")
        key = _KEY_CHARS.sub("_", f"{socket.gethostname()}:{printer}:{job_id}")[:128]
    content_type = environ.get("CONTENT_TYPE") or "application/octet-stream"
    final = environ.get("FINAL_CONTENT_TYPE", "")
    if len(argv) == 6 and final and not final.startswith("printer/"):
        content_type = final  # stdin carries the filters' output, not the original document
    return JobSubmission(
        owner=owner.strip(),  # argv[2] is the job owner (the collector trims it too: "0\r" cannot be sent)
        title=title or "untitled",
        copies=copies,
        options=options,
        content_type=_header_text(content_type),
        origin_host=_header_text(options.get("job-originating-host-name", "")),
        cups_job_id=_header_text(job_id),
        idempotency_key=key,
    )


def _file_chunks(path: Path, status: Status) -> Iterator[bytes]:
    size = path.stat().st_size
    sent, last_report = 0, time.monotonic()
    with open(path, "rb") as document:
        while chunk := document.read(CHUNK):
            yield chunk
            sent += len(chunk)
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                status.info(f"Sending job: {sent * 100 // max(size, 1)}% of {size} bytes")


def _error_message(body: bytes, code: int, reason: str) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            return str(data.get("message") or data.get("error") or f"{code} {reason}")
    except ValueError:
        pass
    return f"{code} {reason}"


def _error_code(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("error", ""))
    return ""


def _connection(target: Target, cfg: config.BackendConfig) -> http.client.HTTPConnection:
    if target.scheme == "https":
        context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file \
            else ssl.create_default_context()
        return http.client.HTTPSConnection(target.host, target.port, timeout=cfg.connect_timeout,
                                           context=context)
    return http.client.HTTPConnection(target.host, target.port, timeout=cfg.connect_timeout)


def post_once(target: Target, cfg: config.BackendConfig, headers: dict[str, str], document: Path,
              status: Status) -> tuple[int, str, bytes]:
    """One try: stream the document, return (status, reason, body); TransientError when unreachable."""
    conn = _connection(target, cfg)
    try:
        status.state("+connecting-to-device")
        try:
            conn.connect()
        except (OSError, ssl.SSLError) as exc:
            raise TransientError(f"cannot connect to {target.host}:{target.port}: {exc}") from None
        finally:
            status.state("-connecting-to-device")
        assert conn.sock is not None
        conn.sock.settimeout(cfg.io_timeout)
        status.debug(f"connected to {target.host}:{target.port}, streaming {document.stat().st_size} bytes")
        try:
            conn.request("POST", target.submit_path, body=_file_chunks(document, status), headers=headers,
                         encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The collector may have answered early (413) and closed: read that answer if it is there.
            status.debug(f"upload interrupted ({exc.__class__.__name__}); reading the collector's answer")
            try:
                response = conn.getresponse()
            except (OSError, http.client.HTTPException):
                raise TransientError(f"connection lost while sending: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"sending failed: {exc.__class__.__name__}: {exc}") from None
        else:
            try:
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(
                    f"no answer from the collector: {exc.__class__.__name__}: {exc}") from None
        try:
            body = response.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            body = b""
        return response.status, response.reason, body
    finally:
        conn.close()


def submit(target: Target, cfg: config.BackendConfig, submission: JobSubmission, document: Path,
           status: Status, *, sleep=time.sleep) -> BackendExit:
    headers = submission.to_headers()
    headers["Authorization"] = f"Bearer {cfg.token}"
    headers["User-Agent"] = "pullprint-cups-backend/1"
    started = time.monotonic()
    delays = list(cfg.retry_delays)
    attempt = 0
    last_problem = ""
    while True:
        attempt += 1
        status.info(f"Sending job to {target.host}:{target.port} (try {attempt})")
        status.debug(f"POST {target.describe()} owner={submission.owner} copies={submission.copies} "
                     f"key={submission.idempotency_key} type={submission.content_type}")
        try:
            code, reason, body = post_once(target, cfg, headers, document, status)
        except TransientError as exc:
            last_problem = str(exc)
            status.debug(f"try {attempt} failed: {last_problem}")
        else:
            if code in (200, 201):
                job = ""
                with contextlib.suppress(ValueError, AttributeError):
                    job = str(json.loads(body).get("id", ""))
                repeated = " (already received earlier)" if code == 200 else ""
                status.info(f"Job held for release as {job or 'unknown id'}{repeated}")
                return BackendExit.OK
            message = _error_message(body, code, reason)
            if code == 401:
                # This host's credential (backend.conf) is wrong or revoked: every job would be refused
                # alike, so hold this one (nothing lost) until an operator installs a valid one.
                status.debug(f"collector answered 401 {_error_code(body)}")
                status.error(f"This print server's pullprint credential was refused ({message}). Ask the "
                             f"pullprint administrator for one (pullprint submitter add HOST), install it with "
                             f"pullprint queue install --token-file, then release the job.")
                return BackendExit.HOLD
            if code in _HOLD_STATUSES:
                status.error(f"The pullprint collector refused this queue ({code}): {message}. "
                             f"Check the URI and backend.conf, then release the job.")
                return BackendExit.HOLD
            if 400 <= code < 500 and code not in _RETRY_STATUSES:
                # The job itself is refused (too many copies, the owner's quota full, bad input):
                # sending it again would be refused again. The ERROR line is what the user reads
                # (lpstat -l, the job's printer-state-message), so it is the collector's sentence alone.
                status.debug(f"collector answered {code} {_error_code(body)}")
                status.error(f"The pullprint cluster refused this job: {message}")
                return BackendExit.CANCEL
            if code < 400 and code not in (200, 201):
                status.error(f"Unexpected answer from the pullprint collector ({code} {reason}); "
                             f"check the device URI")
                return BackendExit.HOLD
            last_problem = f"collector answered {code}: {message}"
            status.debug(f"try {attempt} failed: {last_problem}")
        if not delays:
            break
        delay = delays.pop(0)
        if time.monotonic() - started + delay > cfg.retry_budget:
            break
        status.info(f"Collector unavailable, trying again in {delay:g} s")
        sleep(delay)
    status.error(f"Cannot reach the pullprint cluster ({last_problem}); the job will be retried later")
    return BackendExit.RETRY


def _spool_stdin(stdin: BinaryIO, environ: Mapping[str, str]) -> Path:
    """Copy the filters' output to $TMPDIR so a failed try can be sent again (stdin cannot be re-read)."""
    folder = environ.get("TMPDIR") or tempfile.gettempdir()
    fd, name = tempfile.mkstemp(prefix="pullprint-", dir=folder)
    with os.fdopen(fd, "wb") as spool:
        shutil.copyfileobj(stdin, spool, CHUNK)
    return Path(name)


@contextlib.contextmanager
def _sigterm_cancels() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise JobCanceled()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def discovery(argv0: str) -> list[str]:
    name = Path(argv0).name
    return [DISCOVERY[name]] if name in DISCOVERY else list(DISCOVERY.values())


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None,
         stdin: BinaryIO | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the backend; returns a CUPS_BACKEND_* code."""
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    status = Status(stderr or sys.stderr)
    if len(argv) <= 1:
        for line in discovery(argv[0] if argv else "pullprint"):
            stdout.write(line + "\n")
        stdout.flush()
        return BackendExit.OK
    if len(argv) not in (6, 7):
        status.stream.write(USAGE + "\n")
        return BackendExit.FAILED
    spooled: Path | None = None
    try:
        with _sigterm_cancels():
            try:
                target = parse_device_uri(environ.get("DEVICE_URI", ""), status)
                cfg = config.load(environ)
            except (ConfigurationProblem, config.ConfigError) as exc:
                status.error(f"pullprint queue misconfigured: {exc}")
                return BackendExit.HOLD
            status.secrets = (cfg.token,)
            submission = build_submission(argv, environ)
            try:  # what the collector would refuse (an owner no user name can be), refused here
                JobSubmission.from_headers(submission.to_headers())
            except BadRequest as exc:
                status.error(f"pullprint cannot take this job: {exc.message}")
                return BackendExit.CANCEL
            if len(argv) == 7:
                document = Path(argv[6])
                if not os.access(document, os.R_OK):
                    status.error(f"cannot read the spool file {document}")
                    return BackendExit.FAILED
            else:
                try:
                    spooled = document = _spool_stdin(stdin or sys.stdin.buffer, environ)
                except OSError as exc:
                    status.error(f"cannot spool the job to TMPDIR: {exc.strerror or exc}")
                    return BackendExit.FAILED
            return submit(target, cfg, submission, document, status)
    except JobCanceled:
        status.info("Job canceled; upload stopped")
        status.debug("SIGTERM: the collector discards the truncated upload")
        return BackendExit.OK
    finally:
        if spooled is not None:
            with contextlib.suppress(OSError):
                spooled.unlink()
