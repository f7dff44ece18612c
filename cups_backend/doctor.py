"""`pullprint doctor`: detects the cupsd 2.4.2-3+deb12u10 crash on whitespace in job attributes and clears poison jobs.

Debian's cups-daemon 2.4.2-3+deb12u10 broke the loop that copies text-type job attributes into the
options string cupsd hands to filters and backends: whitespace makes it write past its buffer
(SIGSEGV), a control character makes it spin at 100% CPU (docs/cups.md).
This module finds out whether the installed cupsd has the bug (by making a throwaway cupsd crash),
finds the saved jobs that would crash it again at every start (by reading cupsd's job control
files, which are IPP messages), removes them, and tells the operator the choices.

A control file ``RequestRoot/c00001`` is what cupsd's ippWrite() writes: an 8-byte IPP header
(version, operation, request id), then attribute groups, then the end tag 0x03. Each attribute is
``value-tag(1) name-length(2) name value-length(2) value``; a name length of 0 adds a value to the
previous attribute. Verified on 2.4.2-3+deb12u10: group 0x01 holds attributes-charset and
attributes-natural-language, group 0x02 (job) everything else, and the document name travels as
``document-name-supplied`` (nameWithoutLanguage). cupsd writes the file up to 30 s after a change
(DirtyCleanInterval) or when it stops; a job that crashes cupsd at once is never written.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pullprint.cupsd import PrivateCupsd

log = logging.getLogger(__name__)

BROKEN_VERSION = "2.4.2-3+deb12u10"
LAST_GOOD_VERSION = "2.4.2-3+deb12u9"
CUPS_SOURCE_PACKAGE = "cups"
DEFAULT_SERVER_ROOT = Path("/etc/cups")
DEFAULT_REQUEST_ROOT = Path("/var/spool/cups")
DEFAULT_LOG_DIR = Path("/var/log/cups")
CHANGELOG = Path("/usr/share/doc/cups-daemon/changelog.Debian.gz")

# --- IPP encoding (RFC 8010 §3) -------------------------------------------------------------------

TAG_OPERATION = 0x01
TAG_JOB = 0x02
TAG_END = 0x03
TAG_EXTENSION = 0x7F
TAG_INTEGER, TAG_BOOLEAN, TAG_ENUM = 0x21, 0x22, 0x23
TAG_STRING, TAG_DATE, TAG_RESOLUTION, TAG_RANGE = 0x30, 0x31, 0x32, 0x33
TAG_BEGIN_COLLECTION, TAG_TEXT_LANG, TAG_NAME_LANG, TAG_END_COLLECTION = 0x34, 0x35, 0x36, 0x37
TAG_TEXT, TAG_NAME, TAG_KEYWORD, TAG_URI, TAG_URI_SCHEME = 0x41, 0x42, 0x44, 0x45, 0x46
TAG_CHARSET, TAG_LANGUAGE, TAG_MIME, TAG_MEMBER_NAME = 0x47, 0x48, 0x49, 0x4A
_FIXED_SIZES = {TAG_INTEGER: 4, TAG_ENUM: 4, TAG_BOOLEAN: 1, TAG_DATE: 11, TAG_RESOLUTION: 9, TAG_RANGE: 8}
_STRING_TAGS = frozenset({TAG_STRING, *range(0x40, 0x60)})

# cupsd's own job files are a few KiB; these bound what a hostile file can make us allocate.
MAX_CONTROL_FILE_BYTES = 4 * 1024 * 1024
MAX_ATTRIBUTES = 10_000
MAX_COLLECTION_DEPTH = 8


class ControlFileError(ValueError):
    """A job control file (or IPP message) that is truncated or not well formed."""


@dataclass(frozen=True)
class IppAttribute:
    """One attribute: the group it is in (0x02 = job), its name, value tag and values.

    Strings are decoded as UTF-8 with surrogateescape, so no byte is lost; a collection's value is
    a tuple of its member attributes (group 0).
    """

    group: int
    name: str
    value_tag: int
    values: tuple[object, ...]


@dataclass(frozen=True)
class IppMessage:
    version: tuple[int, int]
    code: int  # operation-id in a request or a control file, status-code in a response
    request_id: int
    attributes: tuple[IppAttribute, ...]

    def first(self, name: str, group: int | None = None) -> object | None:
        """The first value of attribute `name` (in `group` if given), or None."""
        for attr in self.attributes:
            if attr.name == name and (group is None or attr.group == group) and attr.values:
                return attr.values[0]
        return None


class _Reader:
    """Bounds-checked reads over bytes; every overrun is a ControlFileError naming the offset."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        if size > len(self.data) - self.pos:
            raise ControlFileError(f"truncated: {what} needs {size} bytes at offset {self.pos}, "
                                   f"{len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(struct.unpack(">H", self.take(2, what))[0])


def parse_ipp(data: bytes) -> IppMessage:
    """Parse a whole IPP message (a cupsd job control file, or a response body) strictly.

    Raises ControlFileError for anything truncated, oversized or malformed, including bytes after
    the end-of-attributes tag.
    """
    if len(data) > MAX_CONTROL_FILE_BYTES:
        raise ControlFileError(f"{len(data)} bytes is more than a job control file holds "
                               f"(limit {MAX_CONTROL_FILE_BYTES})")
    reader = _Reader(data)
    major, minor = reader.u8("version"), reader.u8("version")
    if major not in (1, 2):
        raise ControlFileError(f"not an IPP message: version {major}.{minor}")
    code = reader.u16("operation/status code")
    request_id = int(struct.unpack(">I", reader.take(4, "request id"))[0])
    attributes: list[IppAttribute] = []
    group: int | None = None
    name: str | None = None
    value_tag = 0
    values: list[object] = []

    def flush() -> None:
        if name is not None and group is not None:
            attributes.append(IppAttribute(group, name, value_tag, tuple(values)))

    while True:
        start = reader.pos
        tag = reader.u8("tag (no end-of-attributes tag)")
        if tag == TAG_END:
            flush()
            if reader.pos != len(data):
                raise ControlFileError(f"{len(data) - reader.pos} bytes after the end-of-attributes tag")
            return IppMessage((major, minor), code, request_id, tuple(attributes))
        if tag < 0x10:
            if tag == 0:
                raise ControlFileError(f"invalid delimiter tag 0x00 at offset {start}")
            flush()
            group, name, values = tag, None, []
            continue
        if group is None:
            raise ControlFileError(f"attribute outside any attribute group at offset {start}")
        tag = _full_tag(reader, tag)
        attr_name = _name(reader)
        if attr_name:
            flush()
            if len(attributes) >= MAX_ATTRIBUTES:
                raise ControlFileError(f"more than {MAX_ATTRIBUTES} attributes")
            name, value_tag, values = attr_name, tag, []
        elif name is None:
            raise ControlFileError(f"additional value without an attribute at offset {start}")
        if tag in (TAG_END_COLLECTION, TAG_MEMBER_NAME):
            raise ControlFileError(f"collection tag 0x{tag:02x} outside a collection at offset {start}")
        values.append(_value(reader, tag, depth=0))


def _full_tag(reader: _Reader, tag: int) -> int:
    if tag != TAG_EXTENSION:
        return tag
    extended = int(struct.unpack(">I", reader.take(4, "extension tag"))[0])
    if extended > 0x7FFFFFFF:
        raise ControlFileError(f"extension tag 0x{extended:x} out of range")
    return extended


def _name(reader: _Reader) -> str:
    raw = reader.take(reader.u16("name length"), "attribute name")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ControlFileError(f"attribute name {raw[:40]!r} is not ASCII") from None


def _value(reader: _Reader, tag: int, depth: int) -> object:
    length = reader.u16("value length")
    start = reader.pos
    raw = reader.take(length, f"value of tag 0x{tag:02x}")
    if tag in _FIXED_SIZES and length != _FIXED_SIZES[tag]:
        raise ControlFileError(f"value of tag 0x{tag:02x} at offset {start} has {length} bytes, "
                               f"not {_FIXED_SIZES[tag]}")
    if tag in (TAG_INTEGER, TAG_ENUM):
        return int(struct.unpack(">i", raw)[0])
    if tag == TAG_BOOLEAN:
        return raw != b"\x00"
    if tag == TAG_RESOLUTION:
        return tuple(struct.unpack(">iib", raw))
    if tag == TAG_RANGE:
        return tuple(struct.unpack(">ii", raw))
    if tag in (TAG_TEXT_LANG, TAG_NAME_LANG):
        inner = _Reader(raw)
        language = inner.take(inner.u16("language length"), "language").decode("utf-8", "surrogateescape")
        text = inner.take(inner.u16("text length"), "text").decode("utf-8", "surrogateescape")
        if inner.pos != len(raw):
            raise ControlFileError(f"{len(raw) - inner.pos} stray bytes in a with-language value at offset {start}")
        return (language, text)
    if tag == TAG_BEGIN_COLLECTION:
        return _collection(reader, depth + 1)
    if tag in _STRING_TAGS:
        return raw.decode("utf-8", "surrogateescape")
    return raw  # dateTime, out-of-band values and unknown tags: kept as they are


def _collection(reader: _Reader, depth: int) -> tuple[IppAttribute, ...]:
    if depth > MAX_COLLECTION_DEPTH:
        raise ControlFileError(f"collections nested deeper than {MAX_COLLECTION_DEPTH}")
    members: list[IppAttribute] = []
    member: str | None = None
    member_tag = 0
    member_values: list[object] = []
    while True:
        start = reader.pos
        tag = reader.u8("collection member (no end-collection tag)")
        if tag < 0x10:
            raise ControlFileError(f"delimiter tag 0x{tag:02x} inside a collection at offset {start}")
        tag = _full_tag(reader, tag)
        if _name(reader):
            raise ControlFileError(f"named attribute inside a collection at offset {start}")
        if tag == TAG_END_COLLECTION:
            reader.take(reader.u16("end-collection length"), "end-collection value")
            if member is not None:
                members.append(IppAttribute(0, member, member_tag, tuple(member_values)))
            return tuple(members)
        if tag == TAG_MEMBER_NAME:
            if member is not None:
                members.append(IppAttribute(0, member, member_tag, tuple(member_values)))
            member, member_tag, member_values = _name(reader), 0, []
            if len(members) >= MAX_ATTRIBUTES:
                raise ControlFileError(f"more than {MAX_ATTRIBUTES} collection members")
            continue
        if member is None:
            raise ControlFileError(f"collection value without a member name at offset {start}")
        member_tag = member_tag or tag
        member_values.append(_value(reader, tag, depth))


def encode_ipp_request(operation: int, request_id: int,
                       attributes: Sequence[tuple[int, str, str | int]]) -> bytes:
    """An IPP/2.0 request with one operation group: (value tag, name, value) each."""
    out = bytearray(struct.pack(">BBHI", 2, 0, operation, request_id))
    out.append(TAG_OPERATION)
    for tag, name, value in attributes:
        raw = struct.pack(">i", value) if isinstance(value, int) else value.encode()
        out += struct.pack(">BH", tag, len(name)) + name.encode() + struct.pack(">H", len(raw)) + raw
    out.append(TAG_END)
    return bytes(out)


# --- what cupsd hands to backends, and which characters break it -----------------------------------

# cupsd (scheduler/job.c get_options) copies job-group attributes of these value tags into the
# options string; URIs only for job-uuid, and of the job-* names only these four (on local queues).
_OPTION_STRING_TAGS = frozenset({TAG_STRING, TAG_TEXT, TAG_NAME, TAG_KEYWORD, TAG_CHARSET, TAG_LANGUAGE})
_JOB_ATTRIBUTES_PASSED = frozenset({"job-billing", "job-impressions", "job-originating-host-name", "job-uuid"})
# Verified on u10: each of these crashes cupsd (its whitespace test is isspace()) ...
_CRASHING = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return",
             "\v": "a vertical tab", "\f": "a form feed"}
# ... and any other C0 control character or DEL makes it spin (checked: \x01, \x1b, \x1f, \x7f).


def passed_to_backends(attr: IppAttribute) -> bool:
    """True when cupsd copies this attribute's string values into the options of filters and backends."""
    if attr.group != TAG_JOB or attr.name.startswith("time-") or attr.name == "job-name":
        return False
    if attr.name == "copies" and attr.value_tag == TAG_INTEGER:
        return False
    if attr.name.startswith("job-") and attr.name not in _JOB_ATTRIBUTES_PASSED:
        return False
    if attr.value_tag == TAG_URI:
        return attr.name == "job-uuid"
    return attr.value_tag in _OPTION_STRING_TAGS


def breaking_character(value: str) -> tuple[str, bool] | None:
    """(what the first harmful character is, True if it hangs cupsd rather than crashing it), or None."""
    for char in value:
        if char in _CRASHING:
            return _CRASHING[char], False
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"a control character ({char!r})", True
    return None


# --- poison jobs in RequestRoot ---------------------------------------------------------------------

_CONTROL_FILE = re.compile(r"c(\d{5,9})")
_UNFINISHED = frozenset({3, 4, 5, 6})  # pending, held, processing, stopped (RFC 8011 job-state)


@dataclass(frozen=True)
class PoisonJob:
    """A saved, unfinished job whose attributes make an affected cupsd crash (or hang) as it starts it."""

    job_id: int
    owner: str
    title: str
    document_name: str | None
    queue: str
    reason: str  # e.g. "its document name contains a space"
    files: tuple[Path, ...]  # the control file, then its data files
    hangs: bool = False  # a control character: cupsd spins instead of crashing

    @property
    def effect(self) -> str:
        return "makes cupsd hang" if self.hangs else "crashes cupsd"


@dataclass
class SpoolScan:
    """What a look through RequestRoot found: poison jobs, and control files that could not be read."""

    poison: list[PoisonJob] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    jobs_seen: int = 0


def _attribute_label(name: str) -> str:
    if name in ("document-name-supplied", "document-name"):
        return "document name"
    return f"option {name}"


def poison_reason(message: IppMessage) -> tuple[str, bool] | None:
    """Why this job's attributes break an affected cupsd ("its document name contains a space"), or None."""
    for attr in message.attributes:
        if not passed_to_backends(attr):
            continue
        for value in attr.values:
            if not isinstance(value, str):
                continue
            found = breaking_character(value)
            if found:
                what, hangs = found
                return f"its {_attribute_label(attr.name)} contains {what}", hangs
    return None


def read_control_file(path: Path) -> IppMessage:
    """Parse one job control file; ControlFileError names the file when it is not well formed."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_CONTROL_FILE_BYTES + 1)
    try:
        return parse_ipp(data)
    except ControlFileError as exc:
        raise ControlFileError(f"{path}: {exc}") from None


def _queue_of(printer_uri: object) -> str:
    text = str(printer_uri or "")
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


def _job_from(path: Path, job_id: int, message: IppMessage) -> PoisonJob | None:
    state = message.first("job-state", TAG_JOB)
    if not isinstance(state, int) or state not in _UNFINISHED:
        return None
    found = poison_reason(message)
    if found is None:
        return None
    reason, hangs = found
    document = message.first("document-name-supplied", TAG_JOB) or message.first("document-name", TAG_JOB)
    data_files = sorted(path.parent.glob(f"d{job_id:05d}-[0-9][0-9][0-9]*"))
    return PoisonJob(job_id=job_id, owner=str(message.first("job-originating-user-name", TAG_JOB) or "?"),
                     title=str(message.first("job-name", TAG_JOB) or ""),
                     document_name=str(document) if document is not None else None,
                     queue=_queue_of(message.first("job-printer-uri", TAG_JOB)), reason=reason,
                     files=(path, *data_files), hangs=hangs)


def scan_spool(request_root: Path) -> SpoolScan:
    """Read every control file in `request_root`; poison jobs by job id, unreadable files noted, never raised.

    Listing `request_root` itself may raise OSError (missing, or not root: it is root:lp 0710).
    """
    scan = SpoolScan()
    for path in sorted(Path(request_root).iterdir()):
        match = _CONTROL_FILE.fullmatch(path.name)
        if not match or not path.is_file():
            continue
        scan.jobs_seen += 1
        try:
            message = read_control_file(path)
        except (ControlFileError, OSError) as exc:
            log.warning("skipping job control file: %s", exc)
            scan.unreadable.append(str(exc))
            continue
        job = _job_from(path, int(match.group(1)), message)
        if job:
            scan.poison.append(job)
    scan.poison.sort(key=lambda job: job.job_id)
    return scan


def find_poison_jobs(request_root: Path) -> list[PoisonJob]:
    """The unfinished jobs in `request_root` whose attributes crash (or hang) cupsd 2.4.2-3+deb12u10.

    Control files that are truncated or malformed are skipped with a warning in the log.
    """
    return scan_spool(request_root).poison


# --- talking to a cupsd that may be hung, with a timeout --------------------------------------------

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _default_server() -> str:
    if os.environ.get("CUPS_SERVER"):
        return os.environ["CUPS_SERVER"]
    with contextlib.suppress(ImportError):
        import cups  # client.conf and the domain socket, as lp would pick them

        server = cups.getServer()
        return server if server.startswith("/") else f"{server}:{cups.getPort()}"
    return "/run/cups/cups.sock" if Path("/run/cups/cups.sock").exists() else "localhost:631"


def _http_connection(cups_server: str | None, timeout: float) -> http.client.HTTPConnection:
    server = cups_server or _default_server()
    if server.startswith("/"):
        return _UnixHTTPConnection(server, timeout)
    host, _, port = server.rpartition(":")
    if host and port.isdigit():
        return http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    return http.client.HTTPConnection(server, 631, timeout=timeout)


def ipp_call(cups_server: str | None, body: bytes, *, resource: str = "/", timeout: float = 2.0) -> IppMessage | None:
    """POST one IPP request; the parsed response, or None when cupsd does not answer within `timeout`.

    pycups would block for as long as a spinning cupsd holds the connection; this cannot.
    """
    connection = _http_connection(cups_server, timeout)
    try:
        # "localhost" is a Host value cupsd always accepts.
        connection.request("POST", resource, body, {"Host": "localhost", "Content-Type": "application/ipp"})
        response = connection.getresponse()
        data = response.read(MAX_CONTROL_FILE_BYTES + 1)
        return parse_ipp(data) if response.status == 200 else None
    except (OSError, http.client.HTTPException, ControlFileError):
        return None
    finally:
        connection.close()


def _operation_attributes(user: str) -> list[tuple[int, str, str | int]]:
    return [(TAG_CHARSET, "attributes-charset", "utf-8"), (TAG_LANGUAGE, "attributes-natural-language", "en"),
            (TAG_NAME, "requesting-user-name", user)]


def cupsd_answers(cups_server: str | None, timeout: float = 3.0) -> bool:
    """True when the cupsd at `cups_server` answers an IPP request (CUPS-Get-Printers) within `timeout`."""
    body = encode_ipp_request(0x4002, 1, [*_operation_attributes("root"),
                                          (TAG_KEYWORD, "requested-attributes", "printer-name")])
    return ipp_call(cups_server, body, timeout=timeout) is not None


def _job_state(cups_server: str, job_id: int, timeout: float) -> int | None:
    """job-state of `job_id` (Get-Job-Attributes), or None when cupsd does not answer."""
    body = encode_ipp_request(0x0009, job_id, [*_operation_attributes("pullprint-probe"),
                                               (TAG_URI, "job-uri", f"ipp://localhost/jobs/{job_id}"),
                                               (TAG_KEYWORD, "requested-attributes", "job-state")])
    answer = ipp_call(cups_server, body, timeout=timeout)
    if answer is None:
        return None
    state = answer.first("job-state")
    return state if isinstance(state, int) else 0


# --- the active probe -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CrashProbe:
    """What the probe of the installed cupsd found."""

    affected: bool
    detail: str
    package_version: str | None
    probed: bool = True  # False when no probe could run (no cupsd, it would not start): `affected` is a guess


def package_version(package: str = "cups-daemon") -> str | None:
    """The installed Debian version of `package`, None when dpkg does not know it (not Debian)."""
    if not shutil.which("dpkg-query"):
        return None
    out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", package],
                         capture_output=True, text=True, check=False)
    status, _, version = out.stdout.partition("|")
    if out.returncode != 0 or not status.startswith("ii"):
        return None
    return version.strip() or None


# A crash comes within about 0.1 s of the job starting; a healthy cupsd answers in milliseconds.
_NO_ANSWER_MEANS_HUNG = 3.0
_SURVIVAL_GRACE = 1.0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class _Outcome:
    kind: str  # "crashed", "hung", "survived", "inconclusive"
    detail: str


def _submit_and_watch(cupsd: PrivateCupsd, connection: Any, document_name: str, deadline: float) -> _Outcome:
    """Submit a job named `document_name` to the probe queue and watch what cupsd does as it starts it."""
    import cups

    daemon = cupsd.daemon
    job_id = connection.createJob("probe", "pullprint crash probe", {})

    def send() -> None:
        # Blocks for as long as a hung cupsd keeps the connection; killing cupsd ends it.
        with contextlib.suppress(cups.IPPError, RuntimeError):
            connection.startDocument("probe", job_id, document_name, cups.CUPS_FORMAT_AUTO, 1)
            connection.writeRequestData(b"pullprint crash probe\n", 22)
            connection.finishDocument("probe")

    sender = threading.Thread(target=send, name="pullprint-probe-submit", daemon=True)
    started = time.monotonic()
    cpu_before = _cpu_seconds(daemon.pid)
    sender.start()
    silent_since: float | None = None
    passed_at: float | None = None
    shown = repr(document_name)
    while time.monotonic() < deadline:
        if not daemon.alive():
            code = daemon.process.returncode
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            return _Outcome("crashed", f"a throwaway cupsd died ({how}) {time.monotonic() - started:.1f} s after "
                                       f"a job with the document name {shown} was submitted")
        state = _job_state(cupsd.server, job_id, timeout=1.0)
        now = time.monotonic()
        if state is None:
            silent_since = silent_since or now
            if now - silent_since >= _NO_ANSWER_MEANS_HUNG:
                cpu = _cpu_seconds(daemon.pid) - cpu_before
                return _Outcome("hung", f"a throwaway cupsd stopped answering after a job with the document name "
                                        f"{shown} was submitted (it used {cpu:.1f} s of CPU in "
                                        f"{now - started:.1f} s)")
        else:
            silent_since = None
            # cupsd builds the options as it starts the job, in the same pass of its main loop;
            # answering afterwards with the job processing (or past it) means it got through.
            if state >= 5:
                passed_at = passed_at or now
                if now - passed_at >= _SURVIVAL_GRACE:
                    with contextlib.suppress(cups.IPPError, RuntimeError):
                        sender.join(1.0)
                        if not sender.is_alive():
                            connection.cancelJob(job_id, purge_job=True)
                    return _Outcome("survived", f"a throwaway cupsd started a job with the document name {shown} "
                                                f"and kept running")
        time.sleep(0.05)
    return _Outcome("inconclusive", f"the job with the document name {shown} did not start within the probe's time")


def _probe_names(cupsd: PrivateCupsd, document_names: Sequence[str], deadline: float) -> list[_Outcome]:
    """Submit each name in turn to one throwaway cupsd, stopping at the first that breaks it."""
    import cups

    from pullprint.daemons import free_port

    saved = (cups.getServer(), cups.getPort(), cups.getUser())
    outcomes: list[_Outcome] = []
    try:
        # pycups' createJob looks the queue up through the process-wide server setting, not only
        # through the connection, so both point at the probe cupsd for the duration.
        cups.setServer(cupsd.server)
        cups.setUser("pullprint-probe")
        connection = cups.Connection(host=cupsd.host, port=cupsd.port)
        # A closed local port: a backend that does start just fails to connect, nothing is printed.
        connection.addPrinter("probe", device=f"socket://127.0.0.1:{free_port()}", ppdname="raw")
        connection.acceptJobs("probe")
        connection.enablePrinter("probe")
        for name in document_names:
            outcome = _submit_and_watch(cupsd, connection, name, deadline)
            outcomes.append(outcome)
            if outcome.kind != "survived":
                break
    finally:
        cups.setServer(saved[0])
        cups.setPort(saved[1])
        cups.setUser(saved[2])
    return outcomes


def probe_whitespace_crash(timeout: float = 10.0) -> CrashProbe:
    """Make a throwaway cupsd (the installed binary) start a job whose document name holds a space.

    affected=True when it dies or stops answering. When it survives, a second job with a control
    character in its name is tried on the same cupsd (a hang is caught by a timeout). The probe
    cupsd is SIGKILLed and its folder removed in every case.
    """
    return probe_document_names(["a b", "a\x01b"], timeout)


def probe_document_names(document_names: Sequence[str], timeout: float = 10.0) -> CrashProbe:
    """Submit jobs with these document names, in turn, to one throwaway cupsd; see probe_whitespace_crash."""
    from pullprint.cupsd import PrivateCupsd
    from pullprint.errors import PullprintError

    version = package_version()
    deadline = time.monotonic() + timeout
    base = Path(tempfile.mkdtemp(prefix="pullprint-probe-"))
    cupsd = None
    try:
        base.chmod(0o755)  # the lp user must be able to reach the spool (socket backend runs as lp)
        try:
            cupsd = PrivateCupsd.start(base / "cups", log_level="info",
                                       timeout=max(1.0, timeout / 2))
        except (PullprintError, OSError, ValueError, RuntimeError) as exc:
            return CrashProbe(affected=version == BROKEN_VERSION, probed=False, package_version=version,
                              detail=f"could not start a throwaway cupsd to probe: {exc}")
        try:
            outcomes = _probe_names(cupsd, document_names, deadline)
        except ImportError:
            return CrashProbe(affected=version == BROKEN_VERSION, probed=False, package_version=version,
                              detail="pycups is not installed, so the probe could not submit a job")
        except RuntimeError as exc:  # pycups: "failed to connect to server", cupsd died while we set up
            return CrashProbe(affected=version == BROKEN_VERSION, probed=False, package_version=version,
                              detail=f"the probe could not talk to its throwaway cupsd: {exc}")
        last = outcomes[-1]
        if last.kind in ("crashed", "hung"):
            return CrashProbe(affected=True, detail=last.detail, package_version=version)
        if last.kind == "inconclusive":
            return CrashProbe(affected=version == BROKEN_VERSION, probed=False, package_version=version,
                              detail=last.detail)
        return CrashProbe(affected=False, package_version=version,
                          detail="; ".join(outcome.detail for outcome in outcomes))
    finally:
        if cupsd is not None:
            cupsd.daemon.kill()  # nothing in it is worth saving, and a hung cupsd ignores SIGTERM
        shutil.rmtree(base, ignore_errors=True)


_probe_cache: dict[tuple[int, int, int], CrashProbe] = {}


def cached_crash_probe(timeout: float = 10.0) -> CrashProbe:
    """probe_whitespace_crash(), run once per installed cupsd binary in this process (queue install calls it)."""
    from pullprint.daemons import which

    binary = which("cupsd")
    if binary is None:
        return probe_whitespace_crash(timeout)
    info = os.stat(binary)
    key = (info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _probe_cache:
        _probe_cache[key] = probe_whitespace_crash(timeout)
    return _probe_cache[key]


# --- cancelling poison jobs -------------------------------------------------------------------------

def _job_label(job: PoisonJob) -> str:
    return f"job {job.job_id} of {job.owner} ({json.dumps(job.title, ensure_ascii=False)})"


def _connect_if_answering(cups_server: str | None) -> Any | None:
    """A pycups connection, or None when cupsd does not answer (checked first: pycups would block on a hung one)."""
    if not cupsd_answers(cups_server):
        return None
    from cups_backend.install import connect

    try:
        return connect(cups_server)
    except RuntimeError:  # "failed to connect to server": it went away since
        return None


def cancel_poison_jobs(jobs: Iterable[PoisonJob], *, cups_server: str | None, request_root: Path) -> list[str]:
    """Get rid of poison jobs: cancel (and purge) them through cupsd when it answers, else remove their files.

    A cupsd that has crashed cannot cancel anything, and starting it would crash it again on the
    same job, so then the job's control and data files in `request_root` are deleted (cupsd logs
    "Files have gone away" for it and carries on). Returns one message per job.
    """
    jobs = list(jobs)
    version = package_version() or BROKEN_VERSION
    request_root = Path(request_root)
    messages: list[str] = []
    if not jobs:
        return messages
    connection = _connect_if_answering(cups_server)
    if connection is not None:
        import cups

        for job in jobs:
            why = f"{job.reason}, which {job.effect} {version}"
            try:
                connection.cancelJob(job.job_id, purge_job=True)
            except cups.IPPError as exc:
                status, text = exc.args if len(exc.args) == 2 else (0, str(exc))
                if status == cups.IPP_NOT_FOUND:
                    messages.append(f"could not cancel {_job_label(job)}: the cupsd at "
                                    f"{cups_server or _default_server()} does not know it (is {request_root} "
                                    f"its RequestRoot?); its files were left alone")
                else:
                    messages.append(f"could not cancel {_job_label(job)}: {text}")
                continue
            messages.append(f"cancelled {_job_label(job)}: {why}")
        return messages
    for job in jobs:
        why = f"{job.reason}, which {job.effect} {version}"
        removed = []
        for path in job.files:
            path = Path(path)
            # Only files of this job, directly in RequestRoot: a crafted PoisonJob cannot delete elsewhere.
            if path.parent.resolve() != request_root.resolve() or not re.fullmatch(
                    rf"[cd]{job.job_id:05d}(-\d{{3,}})?", path.name):
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
        messages.append(f"removed {_job_label(job)} from {request_root} ({', '.join(removed) or 'no files left'}; "
                        f"cupsd is not answering): {why}")
    return messages


# --- what the error_log says about the crash -------------------------------------------------------

_LOG_LINE = re.compile(r"^(\S) \[[^\]]*\] (.*)$")
_JOB_LINE = re.compile(r"^\[Job (\d+)\] (.*)$")
_QUEUED = re.compile(r'^Queued on "([^"]*)" by "([^"]*)"\.$')
_FILE_QUEUED = re.compile(r'^File of type \S+ queued by "([^"]*)"\.$')
_DOCUMENT_NAME = re.compile(r"^cupsdProcessIPPRequest: document-name \S+ '(.*)'$")
_PRINTER_STARTED = re.compile(r'^Printer "([^"]*)" started by ')
_STARTING = ("time-at-processing=", "Sending job to queue", "job-sheets=", "Started filter", "Started backend")
_FINISHED = ("Job completed.", "Canceled by", "Job stopped.", "Job held", "Purged.", "Unloading...")


@dataclass
class _LoggedJob:
    queue: str = ""
    user: str = ""
    document_name: str | None = None


def crash_culprit(log_dir: Path, *, request_root: Path | None = None) -> str | None:
    """One line naming the job cupsd was starting when it died, from `log_dir`/error_log; None if none.

    At LogLevel info cupsd logs "[Job N] Queued on "Q" by "U"." and nothing as a job starts, so
    the culprit is the last job the log mentions after cupsd last started; at debug it also logs
    "[Job N] time-at-processing=..." as the job starts; only debug2 logs the document name (each
    request attribute). When `request_root` is given, a missing document name is read from the
    job's control file (present for a saved, poison job), and when the log names no job since cupsd
    last started (info level: a saved job started by cupsenable or at start-up leaves no line), the
    saved poison job is named instead.
    """
    path = Path(log_dir) / "error_log"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    jobs: dict[int, _LoggedJob] = {}
    pending_document: str | None = None
    last_mentioned: int | None = None  # since cupsd last (re)started
    starting: int | None = None
    printer_started: str | None = None
    stopped_normally = False
    for line in lines:
        match = _LOG_LINE.match(line)
        if not match:
            continue
        text = match.group(2)
        if text.startswith("Loaded configuration file"):
            last_mentioned, starting, printer_started, stopped_normally = None, None, None, False
            continue
        printer = _PRINTER_STARTED.match(text)
        if printer:
            printer_started = printer.group(1)
            continue
        if text == "Scheduler shutting down normally.":
            stopped_normally = True
            continue
        if "): operation_id=" in text:
            pending_document = None
            continue
        document = _DOCUMENT_NAME.match(text)
        if document:
            pending_document = document.group(1)
            continue
        job_line = _JOB_LINE.match(text)
        if not job_line:
            continue
        job_id, message = int(job_line.group(1)), job_line.group(2)
        job = jobs.setdefault(job_id, _LoggedJob())
        queued = _QUEUED.match(message)
        if queued:
            job.queue, job.user = queued.group(1), queued.group(2)
        file_queued = _FILE_QUEUED.match(message)
        if file_queued:
            job.user = job.user or file_queued.group(1)
        if (queued or file_queued) and pending_document is not None:
            job.document_name, pending_document = pending_document, None
        last_mentioned = job_id
        if message.startswith(_STARTING):
            starting = job_id
        elif message.startswith(_FINISHED) and starting == job_id:
            starting = None
    if stopped_normally:
        return None
    culprit = starting if starting is not None else last_mentioned
    note = ""
    if culprit is None and request_root is not None:
        with contextlib.suppress(OSError):
            saved_poison = find_poison_jobs(request_root)
            candidates = [j for j in saved_poison if j.queue == printer_started] or saved_poison
            if candidates:
                culprit = candidates[0].job_id  # cupsd starts the lowest id first at equal priority
                note = (" (the log does not name it; it is the saved job that crashes cupsd)" if len(candidates) == 1
                        else f" (the log does not name it; the first of {len(candidates)} saved poison jobs)")
    if culprit is None:
        return None
    job = jobs.setdefault(culprit, _LoggedJob())
    if request_root is not None and (job.document_name is None or not job.user or not job.queue):
        with contextlib.suppress(ControlFileError, OSError):
            control = read_control_file(Path(request_root) / f"c{culprit:05d}")
            saved = control.first("document-name-supplied", TAG_JOB)
            if job.document_name is None and saved is not None:
                job.document_name = str(saved)
            job.user = job.user or str(control.first("job-originating-user-name", TAG_JOB) or "")
            job.queue = job.queue or _queue_of(control.first("job-printer-uri", TAG_JOB))
    who = f" of {job.user}" if job.user else ""
    where = f" on queue {job.queue}" if job.queue else ""
    named = (f", document name {json.dumps(job.document_name, ensure_ascii=False)}"
             if job.document_name is not None else ", document name not logged (LogLevel debug2 logs it)")
    return f"cupsd died while starting job {culprit}{who}{where}{named}{note}"


# --- the operator's choices -------------------------------------------------------------------------

def _compare_versions(left: str, op: str, right: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", left, op, right], check=False).returncode == 0


def _policy_versions(packages: Sequence[str]) -> dict[str, list[str]]:
    """Versions `apt-cache policy` offers for each package (its version table)."""
    if not packages or not shutil.which("apt-cache"):
        return {}
    out = subprocess.run(["apt-cache", "policy", *packages], capture_output=True, text=True, check=False)
    versions: dict[str, list[str]] = {}
    current: str | None = None
    in_table = False
    for line in out.stdout.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current, in_table = line[:-1].split(":")[0], False
            versions[current] = []
        elif line.strip() == "Version table:":
            in_table = True
        elif in_table and current is not None:
            match = re.match(r"^\s+(?:\*\*\* )?\s*(\S+) (-?\d+)$", line)
            if match:
                versions[current].append(match.group(1))
    return versions


def installed_cups_packages() -> list[str]:
    """Installed binary packages built from the cups source package (cups-daemon, libcups2, ...)."""
    if not shutil.which("dpkg-query"):
        return []
    out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Package}|${source:Package}\n"],
                         capture_output=True, text=True, check=False)
    packages = []
    for line in out.stdout.splitlines():
        status, _, rest = line.partition("|")
        package, _, source = rest.partition("|")
        if status.startswith("ii") and source.split(" ")[0] == CUPS_SOURCE_PACKAGE:
            packages.append(package)
    return sorted(packages)


@dataclass
class Choices:
    """What the operator can do: a fixed package, going back to u9, and the facts meanwhile."""

    fixed_version: str | None
    packages: list[str]
    pin_command: str | None
    hold_command: str | None
    not_at_last_good: list[str]
    security_fixes: list[str]  # CVE ids fixed in the installed version
    code_execution_fixes: list[str]


def _security_fixes(version: str | None) -> tuple[list[str], list[str]]:
    """CVE ids in the installed version's changelog entry, and those that fix code execution."""
    try:
        with gzip.open(CHANGELOG, "rt", errors="replace") as handle:
            text = handle.read(200_000)
    except OSError:
        return [], []
    entry = text.split("\n -- ", 1)[0]
    if version is None or f"({version})" not in entry.splitlines()[0]:
        return [], []
    fixes: list[str] = []
    code_execution: list[str] = []
    for block in re.split(r"\n  \* ", entry)[1:]:
        ids = re.findall(r"CVE-\d{4}-\d+", block.split("\n", 1)[0])
        fixes += ids
        if re.search(r"code execution|\bRCE\b", block, re.IGNORECASE):
            code_execution += ids
    return fixes, code_execution


def operator_choices(version: str | None) -> Choices:
    packages = installed_cups_packages()
    offered = _policy_versions(packages or ["cups-daemon"])
    fixed = None
    installed = version or BROKEN_VERSION
    for candidate in offered.get("cups-daemon", []):
        if _compare_versions(candidate, "gt", BROKEN_VERSION) and _compare_versions(candidate, "ge", installed) \
                and (fixed is None or _compare_versions(candidate, "gt", fixed)):
            fixed = candidate
    at_last_good = [p for p in packages if LAST_GOOD_VERSION in offered.get(p, [])]
    missing = [p for p in packages if p not in at_last_good]
    pin = hold = None
    if at_last_good:
        pin = "apt-get install " + " ".join(f"{p}={LAST_GOOD_VERSION}" for p in at_last_good)
        hold = "apt-mark hold " + " ".join(at_last_good)
    fixes, code_execution = _security_fixes(version)
    return Choices(fixed, packages, pin, hold, missing, fixes, code_execution)


# --- the command ------------------------------------------------------------------------------------

def _conf_value(server_root: Path, directive: str) -> str | None:
    try:
        text = (Path(server_root) / "cups-files.conf").read_text(errors="replace")
    except OSError:
        return None
    value = None
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == directive.lower():
            value = parts[1].strip()
    return value


def request_root_of(server_root: Path) -> Path:
    """RequestRoot from SERVER_ROOT/cups-files.conf (cupsd's default /var/spool/cups when absent)."""
    return Path(_conf_value(server_root, "RequestRoot") or DEFAULT_REQUEST_ROOT)


def _log_dir_of(server_root: Path) -> Path | None:
    error_log = _conf_value(server_root, "ErrorLog")
    if error_log is None:
        return DEFAULT_LOG_DIR
    if not error_log.startswith("/") or not error_log.endswith("error_log"):
        return None  # syslog, stderr, or a name crash_culprit does not read
    return Path(error_log).parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pullprint doctor",
        description="Check whether the installed cupsd crashes on whitespace in job attributes "
                    f"(Debian cups-daemon {BROKEN_VERSION}), list the saved jobs that would crash it at "
                    "every start, and say what can be done. Exit 0: healthy; 1: affected or poison jobs.")
    parser.add_argument("--cups-server", default=os.environ.get("CUPS_SERVER"),
                        help="cupsd to cancel jobs on, HOST:PORT or a socket path (default: CUPS_SERVER or local)")
    parser.add_argument("--server-root", default=str(DEFAULT_SERVER_ROOT),
                        help="cupsd's ServerRoot; RequestRoot is read from its cups-files.conf (default /etc/cups)")
    parser.add_argument("--request-root", help="the spool folder holding the c00001... job control files "
                        "(default: RequestRoot from cups-files.conf, else /var/spool/cups)")
    parser.add_argument("--cancel-poison", action="store_true",
                        help="cancel the poison jobs (through cupsd; or remove their files when cupsd is down)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _wrap(text: str, indent: str = "  ", hanging: str | None = None) -> str:
    import textwrap

    return textwrap.fill(text, width=100, initial_indent=indent,
                         subsequent_indent=indent if hanging is None else hanging)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    server_root = Path(args.server_root)
    request_root = Path(args.request_root) if args.request_root else request_root_of(server_root)
    probe = probe_whitespace_crash()
    choices = operator_choices(probe.package_version)
    scan = SpoolScan()
    spool_error = None
    try:
        scan = scan_spool(request_root)
    except OSError as exc:
        spool_error = f"cannot read {request_root}: {exc.strerror or exc}" + (
            " (run as root: the spool is root:lp 0710)" if isinstance(exc, PermissionError) else "")
    # Jobs with spaces are harmless to a cupsd without the bug; only list them as poison when it has it.
    poison = scan.poison if probe.affected else []
    answering = cupsd_answers(args.cups_server)
    culprit = None
    log_dir = _log_dir_of(server_root)
    if not answering and log_dir is not None:
        culprit = crash_culprit(log_dir, request_root=request_root)
    cancelled = cancel_poison_jobs(poison, cups_server=args.cups_server, request_root=request_root) \
        if args.cancel_poison and poison else []
    code = 1 if probe.affected or poison else 0
    if args.json:
        print(json.dumps({
            "affected": probe.affected, "probed": probe.probed, "detail": probe.detail,
            "package_version": probe.package_version, "fixed_version": choices.fixed_version,
            "pin_command": choices.pin_command, "hold_command": choices.hold_command,
            "cups_packages": choices.packages, "request_root": str(request_root), "spool_error": spool_error,
            "cupsd_answers": answering, "crash_culprit": culprit,
            "poison_jobs": [{**asdict(job), "files": [str(p) for p in job.files]} for job in poison],
            "unreadable_control_files": scan.unreadable, "cancelled": cancelled, "exit_code": code,
        }, indent=2, ensure_ascii=False))
        return code
    out = _Report(print)
    out.status(probe)
    if probe.affected:
        out.meaning()
        out.choices(choices, probe.package_version)
    out.spool(request_root, scan, poison, spool_error, probe.affected)
    if not answering:
        out.line(f"\ncupsd at {args.cups_server or _default_server()} is not answering"
                 + (f"; its error_log says: {culprit}" if culprit else "."))
    if args.cancel_poison:
        out.line("" if poison else "\n--cancel-poison: nothing to cancel.")
        for message in cancelled:
            out.line(message)
    elif poison:
        out.line("\nRun `pullprint doctor --cancel-poison` to cancel them (with cupsd up they are cancelled "
                 "through it; with cupsd down their files are removed so that it can start again).")
    return code


@dataclass
class _Report:
    emit: Callable[[str], None]

    def line(self, text: str) -> None:
        self.emit(text)

    def status(self, probe: CrashProbe) -> None:
        version = f"cups-daemon {probe.package_version}" if probe.package_version else "cupsd (not a Debian package)"
        if probe.affected:
            verdict = "AFFECTED" if probe.probed else "PROBABLY AFFECTED (by its version; the probe could not run)"
        else:
            verdict = "not affected" if probe.probed else "UNKNOWN (the probe could not run)"
        self.emit(f"{version}: {verdict}")
        self.emit(_wrap(f"probe: {probe.detail}"))

    def meaning(self) -> None:
        self.emit("\nWhat this means")
        self.emit(_wrap(
            "This cupsd crashes (SIGSEGV) as it starts a job whose document name or a text option holds a space, "
            "tab or line break, and spins at 100% CPU without answering on a control character. lp and lpr send "
            "the file's name as the document name, so `lp \"Quarterly report.txt\"` takes the print service "
            "down. The job that started at once is lost with the crash. A job saved first (its queue stopped, "
            "or busy with another job) is a poison job: cupsd crashes again at every start or enable until it "
            "is cancelled. No cupsd.conf or queue setting avoids it. Job titles (lp -t) are not affected."))

    def choices(self, choices: Choices, version: str | None) -> None:
        self.emit("\nChoices")
        if choices.fixed_version:
            self.emit(_wrap(f"1. A fixed package is offered: {choices.fixed_version}. Install it for every CUPS "
                            f"package: apt-get install " + " ".join(
                                f"{p}={choices.fixed_version}" for p in choices.packages or ["cups-daemon"]),
                            hanging="     "))
        else:
            self.emit(_wrap(f"1. A fixed package: none is offered yet (apt-cache policy cups-daemon lists nothing "
                            f"newer than {BROKEN_VERSION}). Run `apt-get update` and this command again later.",
                            hanging="     "))
        if choices.pin_command:
            fixes = (f"{len(choices.security_fixes)} CVEs" if choices.security_fixes else "its CVE fixes")
            rce = (f" ({', '.join(choices.code_execution_fixes)})" if choices.code_execution_fixes else "")
            self.emit(_wrap(f"2. Go back to {LAST_GOOD_VERSION}, which does not crash: all "
                            f"{len(choices.packages)} installed CUPS packages together (pinning only cups-daemon "
                            f"and libcups2 makes apt remove the others):", hanging="     "))
            self.emit(f"     {choices.pin_command}")
            self.emit(f"     {choices.hold_command}    # so that the next upgrade does not bring {BROKEN_VERSION} back")
            self.emit(_wrap(f"This gives up every security fix in {version or BROKEN_VERSION} ({fixes}), including "
                            f"remote code execution ones{rce}. Undo with apt-mark unhold once a fixed package "
                            f"ships.", "     "))
            if choices.not_at_last_good:
                self.emit(_wrap(f"Not offered at {LAST_GOOD_VERSION}: {', '.join(choices.not_at_last_good)}; "
                                f"remove or pin those by hand.", "     "))
        else:
            self.emit(_wrap(f"2. Going back to {LAST_GOOD_VERSION}: apt offers it for none of the installed CUPS "
                            f"packages here.", hanging="     "))
        self.emit(_wrap("3. Meanwhile, on this version: a user who prints a file with a space in its name crashes "
                        "cupsd and loses that job. Ask users to rename such files, or to send the file on stdin, "
                        "which sends no document name, with the title apart: lp -t \"Quarterly report\" < "
                        "\"Quarterly report.txt\". A poison job crashes cupsd at every start until `pullprint "
                        "doctor --cancel-poison` removes it. pullprint itself never sends whitespace or control "
                        "characters in a text attribute to a cupsd.", hanging="     "))

    def spool(self, request_root: Path, scan: SpoolScan, poison: list[PoisonJob], error: str | None,
              affected: bool) -> None:
        if error:
            self.emit(f"\nPoison jobs: unknown, {error}")
            return
        if not affected:
            harmless = len(scan.poison)
            self.emit(f"\n{scan.jobs_seen} saved job(s) in {request_root}"
                      + (f"; {harmless} carry whitespace or control characters, harmless to this cupsd" if harmless
                         else ""))
        elif not poison:
            self.emit(f"\nPoison jobs in {request_root}: none ({scan.jobs_seen} saved job(s) looked at)")
        else:
            self.emit(f"\nPoison jobs in {request_root}: {len(poison)}")
            for job in poison:
                document = f", document {json.dumps(job.document_name, ensure_ascii=False)}" \
                    if job.document_name is not None else ""
                self.emit(f"  {_job_label(job)} on {job.queue}{document}: {job.reason} ({job.effect})")
        for problem in scan.unreadable:
            self.emit(f"  skipped an unreadable control file: {problem}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
