"""A durable local journal of what the analyst must hear about but could not be told (degraded mode).

Each entry is one JSON line, fsynced before the caller goes on. Replay sends the entries to the
analyst in order; every analyst call is idempotent (job ids, claim tokens), so an entry that was
delivered but not yet trimmed when the node died is harmless when sent again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The kinds of entry, and what each one's payload is (collector/replay.py sends them to the analyst,
# or, for COPY_LEFT, to the peer).
REGISTER = "register"                  # a job accepted while the analyst was away: its record, marked offline
FINISH = "finish"                      # the outcome of a release the analyst had claimed: token, state, reason
OFFLINE_CLAIM = "offline-claim"        # an offline release about to send its first byte (write-ahead)
OFFLINE_CLAIM_SETTLED = "offline-claim-settled"  # that release is over (an outcome to record is an offline-release)
OFFLINE_RELEASE = "offline-release"    # the outcome of an offline release: replayed as a claim and a finish
LOCATION = "location"                  # a copy made while the analyst was away (repair, pull)
COPY_LEFT = "copy-left"                # a printed job's copy a peer was away to shred: shredded when it is back


@contextlib.contextmanager
def _flocked(path: Path, operation: int) -> Iterator[None]:
    # A descriptor of our own per call: flock then also keeps threads of one process apart.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # closing it lets the lock go


def _write_fsynced(fd: int, data: bytes) -> None:
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])
    os.fsync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parse(lines: list[bytes]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, entry) for each line that holds a whole entry: an object with a kind and a payload object."""
    parsed = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn line from a crash mid-write was never acknowledged (or the file is damaged)
        if isinstance(entry, dict) and isinstance(entry.get("kind"), str) and isinstance(entry.get("payload"), dict):
            parsed.append((number, entry))
    return parsed


class Journal:
    """One collector's journal file, shared by all of its processes.

    Every gunicorn worker appends while the housekeeping process replays and trims, so the file is
    guarded across processes by `flock` on a lock file beside it (the journal itself is replaced on
    each trim, so its own inode cannot carry the lock): appends take it exclusively and open the
    journal only once they hold it, so none lands in a file a trim is about to replace; reads take it
    shared. A replay reads a snapshot, delivers it without the lock (delivery makes network calls, and
    appends must not wait for them), then under the lock rewrites the journal as the snapshot's
    undelivered entries plus whatever was appended after the snapshot. A second lock file keeps replays
    one at a time, since each trim relies on the journal still beginning with its own snapshot.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._replay_lock_path = self.path.with_name(self.path.name + ".replay-lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        line = (json.dumps({"kind": kind, "payload": payload}, separators=(",", ":")) + "\n").encode()
        with _flocked(self._lock_path, fcntl.LOCK_EX):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # end a torn line first, or this entry would be part of it
                _write_fsynced(fd, line)
            finally:
                os.close(fd)

    def _read(self) -> bytes:
        with _flocked(self._lock_path, fcntl.LOCK_SH):
            return self.path.read_bytes()

    def entries(self) -> list[dict[str, Any]]:
        return [entry for _, entry in _parse(self._read().split(b"\n"))]

    def __len__(self) -> int:
        return len(self.entries())

    def replay(self, deliver: Callable[[str, dict[str, Any]], None]) -> int:
        """Deliver entries in order, dropping each once delivered; returns how many were delivered.

        `deliver` raises `Unreachable`-style exceptions to stop the whole replay (try again later),
        or `Deferred` to keep that entry — and every later entry about the same job, so one job's
        entries stay in order — while the entries of other jobs go on. Entries appended while a
        replay runs wait for the next one.
        """
        with _flocked(self._replay_lock_path, fcntl.LOCK_EX):
            snapshot = self._read()
            entries = _parse(snapshot.split(b"\n"))
            done: set[int] = set()
            waiting_jobs: set[str] = set()
            try:
                for number, entry in entries:
                    job = str(entry.get("payload", {}).get("id", ""))
                    if job in waiting_jobs:
                        continue
                    try:
                        deliver(entry["kind"], entry["payload"])
                        done.add(number)
                    except Deferred:
                        waiting_jobs.add(job)
            finally:
                if done:
                    self._trim(snapshot, done)
            return len(done)

    def _trim(self, snapshot: bytes, done: set[int]) -> None:
        """Rewrite the journal without the snapshot's lines numbered in `done`, keeping what was appended since."""
        with _flocked(self._lock_path, fcntl.LOCK_EX):
            current = self.path.read_bytes()
            if not current.startswith(snapshot):
                # Rewritten behind our back: keep every entry (sending one again is harmless).
                log.warning("journal %s changed under its replay; not trimmed this time", self.path)
                return
            lines = snapshot.split(b"\n")
            kept = [lines[number] for number, _ in _parse(lines) if number not in done]
            # Parsed, not copied: the tail may begin by ending a torn line of the snapshot.
            appended = current[len(snapshot):].split(b"\n")
            kept += [appended[number] for number, _ in _parse(appended)]
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_fsynced(fd, b"".join(line + b"\n" for line in kept))
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            # Before the lock goes: an append fsynced into the new file must not vanish with a rename
            # that a power cut undoes.
            _fsync_dir(self.path.parent)


def settled_offline_claims(entries: Iterable[dict[str, Any]]) -> frozenset[str]:
    """The jobs whose offline claims have an outcome among `entries`: nothing more to say about those claims."""
    return frozenset(str(e.get("payload", {}).get("id")) for e in entries
                     if e.get("kind") in (OFFLINE_RELEASE, OFFLINE_CLAIM_SETTLED))


class Deferred(Exception):
    """This entry cannot be delivered yet (it waits for another node's journal); keep it and go on."""
