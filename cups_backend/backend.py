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

# cupsd starts this program afresh for every job, so what it imports is paid per job: only `os` and
# `sys` here; everything else is imported where it is used (ssl only for pullprints://, tempfile only
# when the data comes on stdin). No http.client (it pulls in the email package): the one request
# this program makes is written and read in `post_once`. tests/unit/test_backend_imports.py keeps it so.
import os
import sys

from cups_backend.exitcodes import BackendExit

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Callable, Iterator, Mapping
    from types import FrameType
    from typing import Any, BinaryIO, TextIO

    from cups_backend.config import BackendConfig
    from pullprint.wire import JobSubmission

SCHEMES = {"pullprint": "http", "pullprints": "https"}
DISCOVERY = {
    "pullprint": 'network pullprint "Unknown" "pullprint secure release cluster"',
    "pullprints": 'network pullprints "Unknown" "pullprint secure release cluster (TLS)"',
}
CHUNK = 64 * 1024
MAX_MESSAGE = 2047  # CUPS_MAX_MESSAGE, prefix and newline included
_KEY_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:._-")
# Answers that mean "this queue is misconfigured", not "this job is bad".
_HOLD_STATUSES = {401, 403, 404, 405}
_RETRY_STATUSES = {408, 429}
MAX_ANSWER = 64 * 1024  # of the collector's answer body, what is read (a JSON object of a few lines)
_MAX_LINE = 65536
_MAX_HEADERS = 100

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

    def notice(self, text: str) -> None:
        """A line cupsd writes to its error_log at LogLevel info (INFO lines only at debug)."""
        self.line("NOTICE", text)

    def warning(self, text: str) -> None:
        self.line("WARNING", text)

    def debug(self, text: str) -> None:
        self.line("DEBUG", text)

    def state(self, change: str) -> None:
        self.line("STATE", change)


class Target:
    """Where the job goes: parsed from DEVICE_URI."""

    __slots__ = ("scheme", "host", "port", "base_path")

    def __init__(self, scheme: str, host: str, port: int, base_path: str) -> None:
        self.scheme = scheme  # http | https
        self.host = host
        self.port = port
        self.base_path = base_path

    def _key(self) -> tuple[str, str, int, str]:
        return (self.scheme, self.host, self.port, self.base_path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Target(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
                f"base_path={self.base_path!r})")

    @property
    def submit_path(self) -> str:
        from pullprint.wire_headers import API

        return f"{self.base_path}{API}/jobs"

    @property
    def host_header(self) -> str:
        """What http.client sends as Host: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def describe(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.submit_path}"


class ConfigurationProblem(Exception):
    """The queue or its credentials are wrong: hold the job for an operator."""


def parse_device_uri(uri: str, status: Status) -> Target:
    from urllib.parse import urlsplit

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
    import shlex
    from urllib.parse import quote

    from pullprint.wire_headers import decode_options

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
    """Printable ASCII only: what cannot travel in a header (a newline, a non-latin-1 letter) is dropped."""
    return "".join(c for c in text if " " <= c <= "~")


def _key_text(text: str) -> str:
    """An Idempotency-Key's characters (the wire's rule): anything else becomes "_"; at most 128."""
    return "".join(c if c in _KEY_ALLOWED else "_" for c in text)[:128]


def build_submission(argv: list[str], environ: Mapping[str, str]) -> JobSubmission:
    """The job's metadata from cupsd's arguments and environment."""
    from pullprint.wire import JobSubmission

    return JobSubmission(**submission_fields(argv, environ))


def submission_fields(argv: list[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """`build_submission`'s fields, without `pullprint.wire` (and its dataclasses) in this process."""
    from pullprint.wire_headers import MAX_COPIES

    job_id, owner, title, copies_text, options_text = argv[1:6]
    options = parse_options(options_text)
    copies = 1
    if len(argv) == 7:  # raw queue: nothing made copies yet; the cluster makes them at release
        try:
            copies = min(max(int(copies_text), 1), MAX_COPIES)
        except ValueError:
            copies = 1
    key = _key_text(options.get("job-uuid", ""))
    if not key:
        import socket

        printer = environ.get("PRINTER", "queue")
        key = _key_text(f"{socket.gethostname()}:{printer}:{job_id}")
    content_type = environ.get("CONTENT_TYPE") or "application/octet-stream"
    final = environ.get("FINAL_CONTENT_TYPE", "")
    if len(argv) == 6 and final and not final.startswith("printer/"):
        content_type = final  # stdin carries the filters' output, not the original document
    return dict(
        owner=owner.strip(),  # argv[2] is the job owner (the collector trims it too: "0\r" cannot be sent)
        title=title or "untitled",
        copies=copies,
        options=options,
        content_type=_header_text(content_type),
        origin_host=_header_text(options.get("job-originating-host-name", "")),
        cups_job_id=_header_text(job_id),
        idempotency_key=key,
    )


def _file_chunks(path: str | os.PathLike[str], status: Status) -> Iterator[bytes]:
    import time

    size = os.stat(path).st_size
    sent, last_report = 0, time.monotonic()
    with open(path, "rb") as document:
        while chunk := document.read(CHUNK):
            yield chunk
            sent += len(chunk)
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                status.info(f"Sending job: {sent * 100 // max(size, 1)}% of {size} bytes")


def _json_object(body: bytes) -> dict[str, object]:
    """The collector's JSON answer, or {} when it is not a JSON object."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(body: bytes, code: int, reason: str) -> str:
    data = _json_object(body)
    return str(data.get("message") or data.get("error") or f"{code} {reason}")


def _error_code(body: bytes) -> str:
    return str(_json_object(body).get("error", ""))


def tls_context(cfg: BackendConfig) -> ssl.SSLContext:
    """Certificate and host name checks against the cluster CA (backend.conf's ca_file) or the system's."""
    import ssl

    try:
        return ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else ssl.create_default_context()
    except (OSError, ValueError) as exc:  # missing or unreadable file, or no certificate in it
        raise ConfigurationProblem(f"cannot load the CA file {cfg.ca_file}: {exc}") from None


class BadAnswer(Exception):
    """What came back is not an HTTP answer (or the connection closed before one)."""


def request_head(target: Target, headers: Mapping[str, str]) -> bytes:
    """The request line and headers of the chunked POST, as http.client would write them.

    A value that cannot be a header (a line break, a letter outside Latin-1: only a broken token in
    backend.conf can hold one) raises ConfigurationProblem, before anything is sent.
    """
    lines = [f"POST {target.submit_path} HTTP/1.1", f"Host: {target.host_header}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        value = str(value)
        if any(c in value for c in "\r\n\0"):
            raise ConfigurationProblem(f"the {name} header would contain a line break")
        lines.append(f"{name}: {value}")
    lines.append("Transfer-Encoding: chunked")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigurationProblem("a header value has characters outside Latin-1") from None


def _read_line(reader: BinaryIO) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise BadAnswer("a line of the answer is too long")
    return line


def read_answer(reader: BinaryIO, limit: int = MAX_ANSWER) -> tuple[int, str, bytes]:
    """(status, reason, at most `limit` bytes of the body) of one HTTP/1.x answer; BadAnswer if it is none."""
    while True:
        line = _read_line(reader)
        if not line:
            raise BadAnswer("Remote end closed connection without response")
        version, _, rest = line.decode("iso-8859-1").rstrip("\r\n").partition(" ")
        code_text, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code_text) != 3 or not code_text.isdigit():
            raise BadAnswer(f"not an HTTP answer: {line[:60]!r}")
        code = int(code_text)
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = _read_line(reader)
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        else:
            raise BadAnswer(f"more than {_MAX_HEADERS} headers")
        if not 100 <= code < 200:  # 100 Continue (and other interim answers) come before the real one
            break
    try:
        body = _read_body(reader, code, headers, limit)
    except (OSError, ValueError, BadAnswer):
        body = b""
    return code, reason.strip(), body


def _read_body(reader: BinaryIO, code: int, headers: Mapping[str, str], limit: int) -> bytes:
    if code in (204, 304):
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        got = 0
        while got < limit:
            size = int(_read_line(reader).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            data = reader.read(min(size, limit - got))
            parts.append(data)
            got += len(data)
            if len(data) < size:
                break
            _read_line(reader)
        return b"".join(parts)
    length = headers.get("content-length")
    if length is not None:
        return reader.read(min(int(length), limit))
    return reader.read(limit)  # no length: the body ends when the collector closes


def _connect(target: Target, cfg: BackendConfig, context: ssl.SSLContext | None) -> socket.socket:
    """A connection to the load balancer, TLS handshake (certificate checked) done; TransientError if not."""
    import socket

    try:
        sock = socket.create_connection((target.host, target.port), timeout=cfg.connect_timeout)
    except OSError as exc:
        raise TransientError(f"cannot connect to {target.host}:{target.port}: {exc}") from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=target.host)
    except (OSError, ValueError) as exc:  # ssl.SSLError and certificate errors are OSErrors
        sock.close()
        raise TransientError(f"cannot connect to {target.host}:{target.port}: {exc}") from None
    return sock


def post_once(target: Target, cfg: BackendConfig, headers: dict[str, str], document: str | os.PathLike[str],
              status: Status, context: ssl.SSLContext | None = None) -> tuple[int, str, bytes]:
    """One try: stream the document, return (status, reason, body); TransientError when unreachable.

    `context` is the TLS context for https (made from `cfg` when not given).
    """
    head = request_head(target, headers)
    if target.scheme == "https" and context is None:
        context = tls_context(cfg)
    status.state("+connecting-to-device")
    try:
        sock = _connect(target, cfg, context if target.scheme == "https" else None)
    finally:
        status.state("-connecting-to-device")
    try:
        sock.settimeout(cfg.io_timeout)
        status.debug(f"connected to {target.host}:{target.port}, streaming {os.stat(document).st_size} bytes")
        try:
            pending = head  # the headers go out with the first chunk
            for chunk in _file_chunks(document, status):
                sock.sendall(b"".join((pending, b"%X\r\n" % len(chunk), chunk, b"\r\n")))
                pending = b""
            sock.sendall(pending + b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The collector may have answered early (413) and closed: read that answer if it is there.
            status.debug(f"upload interrupted ({exc.__class__.__name__}); reading the collector's answer")
            try:
                return read_answer(sock.makefile("rb"))
            except (OSError, BadAnswer):
                raise TransientError(f"connection lost while sending: {exc}") from None
        except OSError as exc:
            raise TransientError(f"sending failed: {exc.__class__.__name__}: {exc}") from None
        try:
            return read_answer(sock.makefile("rb"))
        except (OSError, BadAnswer) as exc:
            raise TransientError(f"no answer from the collector: {exc.__class__.__name__}: {exc}") from None
    finally:
        sock.close()


def submit(target: Target, cfg: BackendConfig, submission: JobSubmission | dict[str, str],
           document: str | os.PathLike[str], status: Status, *,
           sleep: Callable[[float], object] | None = None) -> BackendExit:
    """Send the job (a JobSubmission, or its headers) with retries; the CUPS code it ends with."""
    import time

    from pullprint.wire_headers import H_COPIES, H_IDEMPOTENCY, H_OWNER

    sleep = sleep or time.sleep
    headers = dict(submission) if isinstance(submission, dict) else submission.to_headers()
    headers["Authorization"] = f"Bearer {cfg.token}"
    headers["User-Agent"] = "pullprint-cups-backend/1"
    # One id for this job's every try: the load balancer, the collectors and the analyst log it on
    # each line of the work, so `grep` of this id in their logs follows the job from CUPS's error_log.
    request_id = headers["X-Request-ID"] = f"cups-{os.urandom(8).hex()}"
    request_head(target, headers)  # a token that cannot be sent holds the job before any try
    context = tls_context(cfg) if target.scheme == "https" else None  # one for every try
    started = time.monotonic()
    delays = list(cfg.retry_delays)
    attempt = 0
    last_problem = ""
    while True:
        attempt += 1
        status.info(f"Sending job to {target.host}:{target.port} (try {attempt}, request {request_id})")
        status.debug(f"POST {target.describe()} owner={headers[H_OWNER]} copies={headers[H_COPIES]} "
                     f"key={headers.get(H_IDEMPOTENCY, '')} type={headers['Content-Type']}")
        try:
            code, reason, body = post_once(target, cfg, headers, document, status, context)
        except TransientError as exc:
            last_problem = str(exc)
            status.debug(f"try {attempt} failed: {last_problem}")
        else:
            if code in (200, 201):
                job = str(_json_object(body).get("id", ""))
                repeated = " (already received earlier)" if code == 200 else ""
                status.info(f"Job held for release as {job or 'unknown id'}{repeated}")
                status.notice(f"held as {job or 'unknown id'}{repeated}, request {request_id}")
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


def _spool_stdin(stdin: BinaryIO, environ: Mapping[str, str]) -> str:
    """Copy the filters' output to $TMPDIR so a failed try can be sent again (stdin cannot be re-read)."""
    import tempfile

    folder = environ.get("TMPDIR") or tempfile.gettempdir()
    fd, name = tempfile.mkstemp(prefix="pullprint-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as spool:
            while data := stdin.read(CHUNK):
                spool.write(data)
    except BaseException:
        os.unlink(name)
        raise
    return name


class _SigtermCancels:
    """While inside: cupsd's SIGTERM raises JobCanceled (main thread only; elsewhere nothing changes)."""

    def __enter__(self) -> None:
        import signal

        def handler(signum: int, frame: FrameType | None) -> None:
            raise JobCanceled()

        try:
            self.previous = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread (tests run main() in threads): leave signals alone
            self.previous = None

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is not None:
            import signal

            signal.signal(signal.SIGTERM, self.previous)


def discovery(argv0: str) -> list[str]:
    name = os.path.basename(argv0.rstrip("/"))
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
    spooled: str | None = None
    try:
        with _SigtermCancels():
            from cups_backend import config
            from pullprint.errors import BadRequest
            from pullprint.wire_headers import read_submission_headers, submission_headers

            try:
                target = parse_device_uri(environ.get("DEVICE_URI", ""), status)
                cfg = config.load(environ)
            except (ConfigurationProblem, config.ConfigError) as exc:
                status.error(f"pullprint queue misconfigured: {exc}")
                return BackendExit.HOLD
            status.secrets = (cfg.token,)
            headers = submission_headers(**submission_fields(argv, environ))
            try:  # what the collector would refuse (an owner no user name can be), refused here
                read_submission_headers(headers)  # what JobSubmission.from_headers reads
            except BadRequest as exc:
                status.error(f"pullprint cannot take this job: {exc.message}")
                return BackendExit.CANCEL
            document: str
            if len(argv) == 7:
                document = argv[6]
                if not os.access(document, os.R_OK):
                    status.error(f"cannot read the spool file {document}")
                    return BackendExit.FAILED
            else:
                try:
                    spooled = document = _spool_stdin(stdin or sys.stdin.buffer, environ)
                except OSError as exc:
                    status.error(f"cannot spool the job to TMPDIR: {exc.strerror or exc}")
                    return BackendExit.FAILED
            try:
                return submit(target, cfg, headers, document, status)
            except ConfigurationProblem as exc:
                status.error(f"pullprint queue misconfigured: {exc}")
                return BackendExit.HOLD
    except JobCanceled:
        status.info("Job canceled; upload stopped")
        status.debug("SIGTERM: the collector discards the truncated upload")
        return BackendExit.OK
    finally:
        if spooled is not None:
            try:
                os.unlink(spooled)
            except OSError:
                pass
