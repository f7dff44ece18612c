"""The one interface every printer output path implements, and the result it reports.

Outcomes, and what the release logic may do with each:

- ``completed``: the printer (via IPP / CUPS) reported the job completed.
- ``delivered``: every byte was handed to the printer and the connection closed cleanly; raw
  protocols cannot say more.
- ``not-sent``: nothing reached the printer (connection refused, printer unreachable until the
  timeout); the job may safely go back to held and be released again.
- ``failed``: something may have reached the printer; retrying could print twice, so the job is
  failed with `detail` as the reason the user sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

Outcome = Literal["delivered", "completed", "failed", "not-sent"]
SUCCESS: frozenset[str] = frozenset({"delivered", "completed"})
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class OutputJob:
    """One document to print; `open_stream()` yields its bytes from the start, each time it is called."""

    title: str
    user: str
    copies: int
    options: Mapping[str, str]
    content_type: str
    size: int
    open_stream: Callable[[], Iterator[bytes]] = field(repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    detail: str = ""
    bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome in SUCCESS


class PrinterOutput(Protocol):
    """A way to put a job on a printer; `collector.output.OUTPUTS` says which serves each URI scheme."""

    def send(self, job: OutputJob, uri: str, *, timeout: float = DEFAULT_TIMEOUT) -> DeliveryResult: ...


class UnsupportedPrinterUri(ValueError):
    """No output path handles this printer URI."""


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme.lower()
