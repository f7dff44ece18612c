"""The program cupsd runs for each job on the shared queue: it streams the job to the collectors."""

from __future__ import annotations

from cups_backend.backend import main
from cups_backend.exitcodes import BackendExit

__all__ = ["BackendExit", "main"]
