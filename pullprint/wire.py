"""Wire messages between the parts, as pure encode/decode (no I/O).

Submit (CUPS backend → collector, ``POST /api/v1/jobs``): the body is the document, streamed
(chunked transfer is fine, no size known up front); the metadata travels in headers:

    X-Pullprint-Owner        job owner (CUPS argv[2]), required
    X-Pullprint-Title        job title, percent-encoded UTF-8
    X-Pullprint-Copies       copies the printer must make (1..999)
    X-Pullprint-Options      CUPS options, ``name=value`` pairs, percent-encoded
    X-Pullprint-Origin-Host  job-originating-host-name
    X-Pullprint-Cups-Job-Id  the CUPS job id on the submitting server
    Content-Type             the document format (application/pdf, application/postscript, …)
    Idempotency-Key          the CUPS job-uuid; a repeat returns the first job

Answers: ``201 {"id": ...}`` when durable, ``200`` with the same id for a repeated key, ``4xx``
with ``{"error", "message"}`` for bad input, ``503`` when the node cannot take the job.

From there on the job's metadata is one `JobSubmission`, with what the receiving collector adds:
its JSON form (`to_json`, `from_json`) is the spool's metadata, a replica's, the registration at
the analyst and the journal's entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, unquote

from pullprint.errors import BadRequest

API = "/api/v1"
H_OWNER = "X-Pullprint-Owner"
# Instead of the owner: the sender's address (mail, uploads); the collector asks the analyst whose it is.
H_OWNER_EMAIL = "X-Pullprint-Owner-Email"
H_TITLE = "X-Pullprint-Title"
H_COPIES = "X-Pullprint-Copies"
H_OPTIONS = "X-Pullprint-Options"
H_ORIGIN = "X-Pullprint-Origin-Host"
H_CUPS_JOB = "X-Pullprint-Cups-Job-Id"
H_IDEMPOTENCY = "Idempotency-Key"
# Mail to a printer's own address (email_gateway): print the job there at once, if that printer allows it.
H_PRINT_AT = "X-Pullprint-Print-At"

MAX_COPIES = 999
MAX_TITLE = 255
# What the analyst's registration takes (analyst/jobs/service.py): a submission refused there after its
# 201 (a journalled one, replayed) would be an acknowledged job the registry drops, so it is refused here.
MAX_CONTENT_TYPE = 127
MAX_OPTIONS = 64
MAX_OPTION_VALUE = 1024
# Control characters (NUL among them, which no PostgreSQL text or JSON column holds) become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# CUPS user names: printable, no whitespace or path tricks; 1..64 characters.
_OWNER = re.compile(r"^[A-Za-z0-9._@\-+$]{1,64}$")
_IDEM = re.compile(r"^[A-Za-z0-9:._\-]{1,128}$")
_OPTION_NAME = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,63}$")


class HeaderSource(Protocol):
    """Anything with a case-insensitive `get`, such as a request's headers."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True)
class JobSubmission:
    """A job's metadata, one shape from the submit to the registration.

    The backend sends the first fields (owner … idempotency_key) as headers; the collector that
    receives the job adds the rest (`dataclasses.replace`): its id, site and receiver, its times,
    the document's size, SHA-256 and pages, and which collectors hold its copies. `to_json` is that
    record wherever it travels or rests: the spool's metadata file, a replica's header, the
    registration at the analyst (`POST /api/v1/jobs`, docs/api.md) and the journal's entry.
    """

    owner: str
    title: str = "untitled"
    copies: int = 1
    options: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    origin_host: str = ""
    cups_job_id: str = ""
    idempotency_key: str = ""
    # Added by the receiving collector.
    id: str = ""
    site: str = ""
    received_by: str = ""
    submitted_at: str | None = None  # ISO 8601, UTC
    expires_at: str | None = None
    size: int = 0
    sha256: str = ""
    pages: int | None = None
    locations: tuple[str, ...] = ()  # the collectors holding a copy
    # A guest's job (mail from outside the serviced domains): the HMAC of its release code, which
    # alone releases it at any terminal (the code itself is only in the submit's answer).
    release_code_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["locations"] = list(self.locations)
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> JobSubmission:
        """The metadata `to_json` wrote (a spool file's, a replica's, a journal entry's); other keys are ignored."""
        def text(name: str, default: str = "") -> str:
            value = record.get(name)
            return default if value is None else str(value)

        pages = record.get("pages")
        return cls(
            owner=text("owner"), title=text("title", "untitled"), copies=int(record.get("copies") or 1),
            options={str(k): str(v) for k, v in (record.get("options") or {}).items()},
            content_type=text("content_type", "application/octet-stream"), origin_host=text("origin_host"),
            cups_job_id=text("cups_job_id"), idempotency_key=text("idempotency_key"), id=text("id"),
            site=text("site"), received_by=text("received_by"), submitted_at=record.get("submitted_at"),
            expires_at=record.get("expires_at"), size=int(record.get("size") or 0), sha256=text("sha256"),
            pages=None if pages is None else int(pages), locations=tuple(record.get("locations") or ()),
            release_code_hash=text("release_code_hash"),
        )

    def to_headers(self) -> dict[str, str]:
        headers = {
            H_OWNER: self.owner,
            H_TITLE: quote(self.title, safe=""),
            H_COPIES: str(self.copies),
            H_OPTIONS: encode_options(self.options),
            "Content-Type": self.content_type,
        }
        if self.origin_host:
            headers[H_ORIGIN] = self.origin_host
        if self.cups_job_id:
            headers[H_CUPS_JOB] = self.cups_job_id
        if self.idempotency_key:
            headers[H_IDEMPOTENCY] = self.idempotency_key
        return headers

    @classmethod
    def from_headers(cls, headers: HeaderSource | Mapping[str, str]) -> JobSubmission:
        """Parse and validate submission headers (the backend's fields); raises BadRequest with a clear message."""
        owner = (headers.get(H_OWNER) or "").strip()
        if not owner:
            raise BadRequest("missing-owner", f"the {H_OWNER} header is required")
        if not _OWNER.match(owner):
            raise BadRequest("bad-owner", "the owner name has characters a user name cannot have")
        title = _CONTROL.sub(" ", unquote(headers.get(H_TITLE) or "untitled"))[:MAX_TITLE] or "untitled"
        try:
            copies = int(headers.get(H_COPIES) or 1)
        except ValueError:
            raise BadRequest("bad-copies", "copies must be a whole number") from None
        if not 1 <= copies <= MAX_COPIES:
            raise BadRequest("bad-copies", f"copies must be between 1 and {MAX_COPIES}")
        idem = (headers.get(H_IDEMPOTENCY) or "").strip()
        if idem and not _IDEM.match(idem):
            raise BadRequest("bad-idempotency-key", "the Idempotency-Key has unexpected characters")
        content_type = _CONTROL.sub(" ", headers.get("Content-Type") or "").split(";")[0].strip()
        if len(content_type) > MAX_CONTENT_TYPE:
            raise BadRequest("bad-content-type", f"the Content-Type is longer than {MAX_CONTENT_TYPE} characters")
        options = decode_options(headers.get(H_OPTIONS) or "")
        if len(options) > MAX_OPTIONS or any(len(value) > MAX_OPTION_VALUE for value in options.values()):
            raise BadRequest("bad-options", f"at most {MAX_OPTIONS} options of at most {MAX_OPTION_VALUE} "
                             f"characters each")
        return cls(
            owner=owner,
            title=title,
            copies=copies,
            options=options,
            content_type=content_type or "application/octet-stream",
            origin_host=_CONTROL.sub(" ", headers.get(H_ORIGIN) or "")[:255],
            cups_job_id=_CONTROL.sub(" ", headers.get(H_CUPS_JOB) or "")[:32],
            idempotency_key=idem,
        )


def encode_options(options: Mapping[str, str]) -> str:
    """CUPS options as ``a=1 b=two%20words`` (values percent-encoded)."""
    return " ".join(f"{k}={quote(str(v), safe='')}" for k, v in options.items())


def decode_options(text: str) -> dict[str, str]:
    """The inverse of `encode_options`; also reads the raw argv[5] form CUPS gives a backend.

    Options with names CUPS could not have produced are dropped rather than passed on.
    """
    options: dict[str, str] = {}
    for item in text.split():
        name, _, value = item.partition("=")
        name = name.lower()
        if _OPTION_NAME.match(name):
            options[name] = _CONTROL.sub(" ", unquote(value))
    return options


# Options worth carrying to the printer; the rest (time-at-creation, job-uuid, …) are CUPS bookkeeping.
PRINT_OPTIONS = ("sides", "print-color-mode", "media", "number-up", "orientation-requested",
                 "print-quality", "output-bin", "finishings", "collate", "page-ranges")


def print_options(options: Mapping[str, str]) -> dict[str, str]:
    """The subset of submission options that affect the printed output."""
    return {k: v for k, v in options.items() if k in PRINT_OPTIONS}


# IPP `sides` and the PPD `Duplex` option: the values that print on both sides of the sheet.
_DUPLEX_SIDES = {"two-sided-long-edge", "two-sided-short-edge"}
_DUPLEX_PPD = {"duplexnotumble", "duplextumble"}
# IPP `print-color-mode` and the PPD `ColorModel` option: the values that print in colour.
_COLOR_MODES = {"color", "highlight"}
_COLOR_MODELS = {"rgb", "cmyk", "color", "rgbw", "cmy"}


def is_duplex(options: Mapping[str, str] | None) -> bool:
    """Two-sided by the job's options; a job that does not say is counted one-sided (the CUPS default)."""
    options = options or {}
    if "sides" in options:
        return options["sides"].strip().lower() in _DUPLEX_SIDES
    return options.get("Duplex", "").strip().lower() in _DUPLEX_PPD


def is_color(options: Mapping[str, str] | None) -> bool:
    """Colour by the job's options; `auto` or no option is counted monochrome (the printer decides per page)."""
    options = options or {}
    if "print-color-mode" in options:
        return options["print-color-mode"].strip().lower() in _COLOR_MODES
    return options.get("ColorModel", "").strip().lower() in _COLOR_MODELS
