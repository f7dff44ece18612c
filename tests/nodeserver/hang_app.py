"""A WSGI app for the killed-callee test: `/ok` answers at once; `/hang` notes that it got the request
(in the file PULLPRINT_TEST_SEEN names) and never answers, so the test can SIGKILL the server mid-call."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/hang":
        Path(os.environ["PULLPRINT_TEST_SEEN"]).write_text("seen")
        time.sleep(60)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
