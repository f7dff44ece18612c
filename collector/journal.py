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
        """Deliver entries in order, dropping each once delivered; returns how many were delivered.

        `deliver` raises `Unreachable`-style exceptions to stop the whole replay (try again later),
        or `Deferred` to keep that entry — and every later entry about the same job, so one job's
        entries stay in order — while the entries of other jobs go on.
        """
        delivered = 0
        kept: list[int] = []
        waiting_jobs: set[str] = set()
        entries = self.entries()
        stopped_at = len(entries)
        try:
            for index, entry in enumerate(entries):
                job = str(entry.get("payload", {}).get("id", ""))
                if job in waiting_jobs:
                    kept.append(index)
                    continue
                try:
                    deliver(entry["kind"], entry["payload"])
                    delivered += 1
                except Deferred:
                    kept.append(index)
                    waiting_jobs.add(job)
                except BaseException:
                    stopped_at = index
                    raise
        finally:
            if delivered:
                self._keep(entries_seen=len(entries), keep=kept + list(range(stopped_at, len(entries))))
        return delivered

    def _keep(self, entries_seen: int, keep: list[int]) -> None:
        """Rewrite the journal with the `keep` entries of the first `entries_seen`, then any appended since."""
        with self._lock:
            lines = [line for line in self.path.read_text().splitlines(keepends=True) if line.strip()]
            parsed_ok = []
            for line in lines:
                try:
                    json.loads(line)
                    parsed_ok.append(line)
                except json.JSONDecodeError:
                    continue
            wanted = set(keep)
            survivors = [line for i, line in enumerate(parsed_ok[:entries_seen]) if i in wanted]
            survivors += parsed_ok[entries_seen:]
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as fh:
                fh.writelines(line if line.endswith("\n") else line + "\n" for line in survivors)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)


class Deferred(Exception):
    """This entry cannot be delivered yet (it waits for another node's journal); keep it and go on."""
