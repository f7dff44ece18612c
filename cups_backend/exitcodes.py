"""The exit codes a CUPS backend returns (``/usr/include/cups/backend.h``) and what cupsd does with them."""

from __future__ import annotations

from enum import IntEnum


class BackendExit(IntEnum):
    """CUPS_BACKEND_* codes; cupsd 2.4.2 behaviour as seen on Debian 12 (see the facts file)."""

    OK = 0  # job completed
    FAILED = 1  # queue's printer-error-policy decides (Debian default: retry-job)
    AUTH_REQUIRED = 2  # held for authentication
    HOLD = 3  # held indefinitely until an operator releases it
    STOP = 4  # stops the whole queue: never used here, one bad job must not stop everyone's printing
    CANCEL = 5  # job canceled, never retried
    RETRY = 6  # job held for JobRetryInterval (300 s by default), then run again
    RETRY_CURRENT = 7  # run again at once, in a tight loop: never used for lasting conditions
