"""A durable local journal of what the analyst must hear about but could not be told (degraded mode).

Each entry is one JSON line, fsynced before the caller goes on. Replay sends the entries to the
analyst in order; every analyst call is idempotent (job ids, claim tokens), so an entry that was
delivered but not yet trimmed when the node died is harmless when sent again.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        line = json.dumps({"kind": kind, "payload": payload}, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            lines = self.path.read_text().splitlines()
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a crash mid-write was never acknowledged
        return entries

    def __len__(self) -> int:
        return len(self.entries())

    def replay(self, deliver: Callable[[str, dict[str, Any]], None]) -> int:
        """Deliver entries in order, dropping each once delivered; stops at the first failure.

        Returns how many were delivered. `deliver` raises to signal "try again later".
        """
        delivered = 0
        entries = self.entries()
        try:
            for entry in entries:
                deliver(entry["kind"], entry["payload"])
                delivered += 1
        finally:
            if delivered:
                self._drop_first(delivered)
        return delivered

    def _drop_first(self, count: int) -> None:
        with self._lock:
            lines = self.path.read_text().splitlines(keepends=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as fh:
                fh.writelines(lines[count:])
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
