"""Logging set-up that never writes secrets."""

from __future__ import annotations

import logging
import os
import re
import sys

# PINs, badge numbers, tokens and keys must never reach a log line, even through an exception text.
_SECRET_FIELDS = re.compile(
    r'(?i)("?(?:pin|badge|token|password|secret|authorization|session|key)"?\s*[:=]\s*"?)([^"\s,}&]+)'
)


class RedactingFormatter(logging.Formatter):
    """A formatter that masks anything that looks like a secret value."""

    def format(self, record: logging.LogRecord) -> str:
        return _SECRET_FIELDS.sub(r"\1***", super().format(record))


def redact(text: str) -> str:
    """Mask secret-looking values in `text`."""
    return _SECRET_FIELDS.sub(r"\1***", text)


def setup(name: str, level: str | None = None) -> logging.Logger:
    """Configure the root logger once for a process and return the logger `name`."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("PULLPRINT_LOG_LEVEL", "INFO"))
    return logging.getLogger(name)
