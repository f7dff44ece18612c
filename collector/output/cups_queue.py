"""ipp://, ipps:// and lpd:// printers through the collector's local cupsd (pullprint.cupsd).

One raw queue per printer URI, created on demand, so cupsd's own backends speak IPP or LPD (and
handle IPP's quirks) while the bytes pass unchanged. The job is streamed with
createJob/startDocument/writeRequestData/finishDocument and followed until cupsd says it is done.

Every text pullprint hands this cupsd is made safe first (`cups_text`, `cups_options`): Debian's
cupsd 2.4.2-3+deb12u10 segfaults on whitespace and hangs on a control character in a text job
attribute it passes to backends (docs/cups.md). Titles keep reading the same at the printer:
whitespace becomes U+00A0 NO-BREAK SPACE, which shows as a space but is not ASCII whitespace to
cupsd; control characters are dropped; names are cut to IPP's 255 octets on a character boundary.
Print options are keywords, integers and ranges, never text: a value with whitespace or a control
character is not a valid one and is left out.

The queues use the ``abort-job`` error policy: a job that cannot be printed fails now and the
collector decides (back to held, or failed with a reason), rather than cupsd retrying it later
behind the cluster's back, which could print it twice.

pycups ``Connection`` objects are not thread-safe: every `send` opens its own. Gotcha (seen with
pycups 2.0.4 / libcups 2.4.2): createJob and printFile resolve the queue through the thread's
default server (``cups.setServer``), whatever host the Connection was opened to; with the default
unset they fail with "The printer or class does not exist".
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from collections.abc import Mapping
from urllib.parse import urlsplit

import cups

from collector.output.base import DEFAULT_TIMEOUT, DeliveryResult, OutputJob
from pullprint.wire import MAX_COPIES, print_options

CHUNK = 64 * 1024
# Formats every cupsd knows; anything else is sent as auto-typed so cupsd does not refuse it.
_KNOWN_FORMATS = {"application/pdf", "application/postscript", "text/plain", "image/pwg-raster", "image/urf",
                  "application/vnd.hp-pcl", "application/octet-stream", "image/jpeg", "image/png"}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_USER_CHARS = re.compile(r"[^A-Za-z0-9._@+-]")
_WHITESPACE_RUN = re.compile(r"\s+")
NO_BREAK_SPACE = "\u00a0"
IPP_NAME_OCTETS = 255
_queue_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

_DONE_FAILED = {cups.IPP_JOB_CANCELED: "canceled", cups.IPP_JOB_ABORTED: "aborted"}


def queue_name(uri: str) -> str:
    """A safe, stable CUPS queue name for a printer URI: ``pp-out-<host>-<hash>``."""
    host = _NAME_CHARS.sub("-", urlsplit(uri).hostname or "printer").strip("-")[:40] or "printer"
    digest = hashlib.sha256(uri.encode()).hexdigest()[:10]
    return f"pp-out-{host}-{digest}"


def cups_text(text: str, fallback: str) -> str:
    """`text` as a job or document name cupsd can carry: no ASCII whitespace, no control character."""
    visible = "".join(ch for ch in text if not _is_control(ch))
    name = _WHITESPACE_RUN.sub(NO_BREAK_SPACE, visible.strip())
    encoded = name.encode("utf-8", "replace")[:IPP_NAME_OCTETS]
    return encoded.decode("utf-8", "ignore") or fallback  # "ignore" drops a character cut in half


def cups_options(options: Mapping[str, str]) -> dict[str, str]:
    """The print options cupsd may safely carry: values with whitespace or control characters are dropped."""
    return {name: value for name, value in ((k, str(v).strip()) for k, v in print_options(options).items())
            if value and not any(ch.isspace() or _is_control(ch) for ch in value)}


def _is_control(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL (tab, newline and CR too, which are whitespace as well).
    return unicodedata.category(ch) == "Cc" and not ch.isspace()


def connect(cups_server: str) -> cups.Connection:
    if cups_server.startswith("/"):
        return cups.Connection(host=cups_server)
    host, _, port = cups_server.rpartition(":")
    return cups.Connection(host=host or cups_server, port=int(port) if port.isdigit() else 631)


def _lock_for(name: str) -> threading.Lock:
    with _locks_guard:
        return _queue_locks.setdefault(name, threading.Lock())


class CupsQueueOutput:
    """ipp://, ipps:// and lpd:// printers: a raw queue per printer URI on the local cupsd."""

    def __init__(self, cups_server: str, *, poll_interval: float = 0.2) -> None:
        self.cups_server = cups_server
        self.poll_interval = poll_interval

    def ensure_queue(self, conn: cups.Connection, uri: str) -> str:
        name = queue_name(uri)
        with _lock_for(name):
            existing = conn.getPrinters().get(name)
            if existing is None or existing.get("device-uri") != uri:
                conn.addPrinter(name, device=uri, ppdname="raw", info=f"pullprint output to {uri}"[:127])
                if name not in conn.getPrinters():
                    raise RuntimeError(f"the local cupsd did not create the output queue {name}")
                conn.setPrinterShared(name, False)
                conn.setPrinterErrorPolicy(name, "abort-job")
            if existing is None or existing.get("printer-state") == cups.IPP_PRINTER_STOPPED:
                conn.enablePrinter(name)
                conn.acceptJobs(name)
        return name

    def send(self, job: OutputJob, uri: str, *, timeout: float = DEFAULT_TIMEOUT) -> DeliveryResult:
        deadline = time.monotonic() + timeout
        try:
            # libcups keeps the server and user per thread. createJob looks the queue up on the
            # *default* server (cupsServer()), not on the connection's, so both must be set here.
            # The user makes the printer see the job owner rather than "root".
            cups.setServer(self.cups_server)
            cups.setUser(_USER_CHARS.sub("_", job.user)[:64] or "pullprint")
            conn = connect(self.cups_server)
            name = self.ensure_queue(conn, uri)
        except (RuntimeError, cups.IPPError) as exc:
            return DeliveryResult("not-sent", f"local cupsd unavailable: {_ipp_text(exc)}")
        options = cups_options(job.options)
        options["copies"] = str(min(max(job.copies, 1), MAX_COPIES))
        fmt = job.content_type if job.content_type in _KNOWN_FORMATS else cups.CUPS_FORMAT_AUTO
        sent = 0
        try:
            job_id = conn.createJob(name, cups_text(job.title, "untitled"), options)
        except cups.IPPError as exc:
            return DeliveryResult("not-sent", f"local cupsd refused the job: {_ipp_text(exc)}")
        try:
            conn.startDocument(name, job_id, cups_text(job.title, "document"), fmt, 1)
            for chunk in job.open_stream():
                status = conn.writeRequestData(chunk, len(chunk))
                if status != 100:  # HTTP_CONTINUE
                    raise RuntimeError(f"cupsd stopped taking the document (HTTP status {status})")
                sent += len(chunk)
            conn.finishDocument(name)
        except (cups.IPPError, RuntimeError, OSError) as exc:
            self._cancel(conn, job_id)
            # The document never completed in the local spool, so the printer received nothing.
            return DeliveryResult("not-sent", f"could not queue the job locally: {_ipp_text(exc)}", sent)
        return self._follow(conn, name, job_id, sent, deadline, timeout)

    def _follow(self, conn: cups.Connection, name: str, job_id: int, sent: int, deadline: float,
                timeout: float) -> DeliveryResult:
        seen_processing = False
        seen_progress = False
        while True:
            attrs = conn.getJobAttributes(job_id, requested_attributes=[
                "job-state", "job-state-reasons", "job-printer-state-message"])
            printer = conn.getPrinterAttributes(name, requested_attributes=[
                "printer-state", "printer-state-reasons", "printer-state-message"])
            state = attrs.get("job-state")
            message = attrs.get("job-printer-state-message") or printer.get("printer-state-message") or ""
            reasons = _as_list(attrs.get("job-state-reasons"))
            if state == cups.IPP_JOB_COMPLETED:
                return DeliveryResult("completed", message or "the printer reported the job completed", sent)
            if state in _DONE_FAILED:
                return DeliveryResult("failed", f"job {_DONE_FAILED[state]} ({', '.join(reasons)})"
                                                f"{': ' + message if message else ''}", sent)
            printer_reasons = _as_list(printer.get("printer-state-reasons"))
            if state in (cups.IPP_JOB_STOPPED, cups.IPP_JOB_HELD) \
                    or printer.get("printer-state") == cups.IPP_PRINTER_STOPPED:
                self._cancel(conn, job_id)
                self._restart_queue(conn, name)
                never_reached = not seen_processing or _connecting(printer_reasons) or (
                    _unreachable(message) and not seen_progress)
                detail = f"printer queue stopped ({', '.join(printer_reasons)}){': ' + message if message else ''}"
                return DeliveryResult("not-sent" if never_reached else "failed", detail, sent)
            seen_processing = seen_processing or state == cups.IPP_JOB_PROCESSING
            seen_progress = seen_progress or _progress(message)
            if time.monotonic() >= deadline:
                self._cancel(conn, job_id)
                # Still pending, or the backend never got through to the printer: nothing printed.
                never_reached = (state == cups.IPP_JOB_PENDING or _connecting(printer_reasons)
                                 or (_unreachable(message) and not seen_progress))
                return DeliveryResult("not-sent" if never_reached else "failed",
                                      f"printer did not finish within {timeout:g} s "
                                      f"({', '.join(printer_reasons)}){': ' + message if message else ''}",
                                      sent)
            time.sleep(self.poll_interval)

    @staticmethod
    def _cancel(conn: cups.Connection, job_id: int) -> None:
        # A job left in the local queue could print later, after the cluster released it elsewhere.
        try:
            conn.cancelJob(job_id, purge_job=True)
        except cups.IPPError:
            pass

    @staticmethod
    def _restart_queue(conn: cups.Connection, name: str) -> None:
        try:
            conn.enablePrinter(name)
        except cups.IPPError:
            pass


def _connecting(reasons: list[str]) -> bool:
    return any(r.startswith("connecting-to-device") for r in reasons)


# What cupsd's ipp/lpd/socket backends say while they cannot reach the printer (they keep retrying,
# with no printer-state-reasons set), and what they say once data flows. Seen with CUPS 2.4.2.
_UNREACHABLE = ("may not exist or is unavailable", "is in use", "not responding", "waiting for printer",
                "unable to locate printer", "busy, down, or unreachable", "unable to connect",
                "connecting to printer", "connection refused", "unreachable")
_PROGRESS = ("connected to printer", "sending", "print file accepted", "printing", "copying print data")


def _unreachable(message: str) -> bool:
    text = message.lower()
    return any(p in text for p in _UNREACHABLE)


def _progress(message: str) -> bool:
    text = message.lower()
    return any(p in text for p in _PROGRESS)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _ipp_text(exc: BaseException) -> str:
    if isinstance(exc, cups.IPPError) and len(exc.args) == 2:
        return f"{exc.args[1]} ({cups.ippErrorString(exc.args[0])})"
    return str(exc)
