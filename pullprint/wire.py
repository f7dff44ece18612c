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

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pullprint.wire_headers import (  # the submit's headers: defined there, for the backend's sake
    _CONTROL,  # noqa: F401
    _IDEM,  # noqa: F401
    _OPTION_NAME,  # noqa: F401
    _OWNER,  # noqa: F401
    API,
    H_COPIES,
    H_CUPS_JOB,
    H_IDEMPOTENCY,
    H_OPTIONS,
    H_ORIGIN,
    H_OWNER,
    H_OWNER_EMAIL,
    H_PRINT_AT,
    H_TITLE,
    MAX_CONTENT_TYPE,
    MAX_COPIES,
    MAX_OPTION_VALUE,
    MAX_OPTIONS,
    MAX_TITLE,
    decode_options,
    encode_options,
    read_submission_headers,
    submission_headers,
)

__all__ = ["API", "H_COPIES", "H_CUPS_JOB", "H_IDEMPOTENCY", "H_OPTIONS", "H_ORIGIN", "H_OWNER", "H_OWNER_EMAIL",
           "H_PRINT_AT", "H_TITLE", "MAX_CONTENT_TYPE", "MAX_COPIES", "MAX_OPTIONS", "MAX_OPTION_VALUE", "MAX_TITLE",
           "PRINT_OPTIONS", "HeaderSource", "JobSubmission", "decode_options", "encode_options", "is_color",
           "is_duplex", "print_options", "read_submission_headers", "submission_headers"]


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
        return submission_headers(owner=self.owner, title=self.title, copies=self.copies, options=self.options,
                                  content_type=self.content_type, origin_host=self.origin_host,
                                  cups_job_id=self.cups_job_id, idempotency_key=self.idempotency_key)

    @classmethod
    def from_headers(cls, headers: HeaderSource | Mapping[str, str]) -> JobSubmission:
        """Parse and validate submission headers (the backend's fields); raises BadRequest with a clear message."""
        return cls(**read_submission_headers(headers))


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
