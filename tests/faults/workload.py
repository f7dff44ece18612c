"""The fault suite's workload: submitters and release terminals driving a real cluster through HAProxy.

Every acknowledgement (201/200 + id) of a submission goes to the ledger (JSON lines, fsynced) before
the submitter goes on, so the checker can hold the cluster to every job it ever acknowledged.
Submitters behave like the CUPS backend: a unique Idempotency-Key per job, the same key again on a
5xx or a connection error. Terminals behave like a person at a badge terminal: log in, release the
jobs that are plainly held (an `interrupted` or `failed` job is left for the person to decide, see
checker.py), with an Idempotency-Key that is reused when the request has to be retried.

Each payload starts with a marker line naming its key, so even a partial delivery at a printer can
be attributed to its job.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

MARKER = b"%PULLPRINT-FAULTS key="
LOGIN_TIMEOUT = 5.0          # a login that has not answered by then counts as a failure at this value
SUBMIT_TIMEOUT = 60.0
RELEASE_TIMEOUT = 120.0
SUBMIT_MAX_ATTEMPTS = 60
SUBMIT_MAX_SECONDS = 180.0
RELEASE_MAX_ATTEMPTS = 20
RELEASE_MAX_SECONDS = 90.0
RELEASE_BATCH = 8


def make_payload(key: str, size: int) -> bytes:
    head = MARKER + key.encode() + b"\n"
    return head + os.urandom(max(0, size - len(head)))


def key_of(head: bytes) -> str | None:
    """The job key named by a delivery's first bytes, if it starts with our marker."""
    if not head.startswith(MARKER):
        return None
    line = head[len(MARKER):].split(b"\n", 1)[0]
    try:
        return line.decode()
    except UnicodeDecodeError:
        return None


class Ledger:
    """Append-only JSON lines, each fsynced: acknowledgements, give-ups, logins, releases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = open(path, "a")  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any], *, sync: bool = True) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records


class SlowBody:
    """A request body with a known length that is sent slowly (a big upload stays in flight)."""

    def __init__(self, data: bytes, pause: float, on_progress: Callable[[float], None] | None = None) -> None:
        self.data, self.pause, self.on_progress = data, pause, on_progress
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        if self.pos >= len(self.data):
            if self.on_progress:
                self.on_progress(1.0)
            return b""
        size = 64 * 1024 if size is None or size < 0 else size
        chunk = self.data[self.pos:self.pos + size]
        before = self.pos // (64 * 1024)
        self.pos += len(chunk)
        if self.pos // (64 * 1024) != before and self.pause:
            time.sleep(self.pause)
        if self.on_progress:
            self.on_progress(self.pos / len(self.data))
        return chunk


@dataclass
class Target:
    lb_url: str
    submit_token: str
    users: list[dict[str, str]]
    printers: list[str]
    tls: dict[str, Any] = field(default_factory=dict)  # requests' verify/cert for the cluster

    @classmethod
    def from_cluster_json(cls, path: Path) -> Target:
        info = json.loads(path.read_text())
        token = (Path(info["secrets_dir"]) / "submit_token").read_text().strip()
        tls = {"verify": info["ca_file"], "cert": (info["admin_cert"]["cert"], info["admin_cert"]["key"])} \
            if info.get("ca_file") else {}
        return cls(info["lb_url"], token, info["users"], [p["id"] for p in info["printers"]], tls)


@dataclass
class Stats:
    started: int = 0
    acked: int = 0
    gave_up: int = 0
    rejected: int = 0
    submit_retries: int = 0
    logins: list[tuple[float, float, int]] = field(default_factory=list)  # (t, latency, status; 0 = error)
    releases: int = 0
    release_gave_up: int = 0
    release_statuses: dict[str, int] = field(default_factory=dict)
    big_in_flight: int = 0
    terminal_5xx: int = 0


class Workload:
    def __init__(self, target: Target, ledger: Ledger, *, jobs: int, submitters: int = 4, terminals: int = 4,
                 big_fraction: float = 0.12, pause: float = 0.05, seed: int | None = None) -> None:
        self.target, self.ledger, self.jobs = target, ledger, jobs
        self.n_submitters, self.n_terminals, self.big_fraction = submitters, terminals, big_fraction
        self.pause = pause
        self.stats = Stats()
        self.lock = threading.Lock()
        self.stop_submitting = threading.Event()
        self.stop_terminals = threading.Event()
        self.threads: list[threading.Thread] = []
        self.rng = random.Random(seed)
        self.t0 = time.time()
        # Submitters go on past `jobs` while this says so (the injector has not reached its kills yet).
        self.keep_going: Callable[[], bool] = lambda: False

    # -- submitting ---------------------------------------------------------------------------------
    def _headers(self, owner: str, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.target.submit_token}", "X-Pullprint-Owner": owner,
                "X-Pullprint-Title": f"fault-{key[-12:]}", "Idempotency-Key": key,
                "Content-Type": "application/octet-stream"}

    def submit_job(self, owner: str, payload: bytes, key: str, *, first_url: str | None = None,
                   slow: float = 0.0, on_progress: Callable[[float], None] | None = None,
                   origin: str = "submitter") -> dict[str, Any] | None:
        """Submit until acknowledged (same key on every retry), bounded; the ack goes to the ledger."""
        digest = hashlib.sha256(payload).hexdigest()
        started = time.monotonic()
        last = ""
        for attempt in range(1, SUBMIT_MAX_ATTEMPTS + 1):
            base = first_url if (attempt == 1 and first_url) else self.target.lb_url
            body: Any = SlowBody(payload, slow, on_progress if attempt == 1 else None) if slow else payload
            try:
                answer = requests.post(f"{base}/api/v1/jobs", data=body, headers=self._headers(owner, key),
                                       timeout=SUBMIT_TIMEOUT, **self.target.tls)
                status = answer.status_code
                if status in (200, 201):
                    job_id = answer.json()["id"]
                    record = {"kind": "ack", "key": key, "id": job_id, "owner": owner, "sha256": digest,
                              "size": len(payload), "status": status, "attempts": attempt, "t": time.time(),
                              "origin": origin}
                    self.ledger.write(record)
                    with self.lock:
                        self.stats.acked += 1
                    return record
                last = f"{status} {answer.text[:200]}"
                if 400 <= status < 500 and status not in (408, 409, 429):
                    self.ledger.write({"kind": "rejected", "key": key, "owner": owner, "sha256": digest,
                                       "status": status, "body": answer.text[:300], "t": time.time()})
                    with self.lock:
                        self.stats.rejected += 1
                    return None
            except (requests.RequestException, OSError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"[:300]
            with self.lock:
                self.stats.submit_retries += 1
            if time.monotonic() - started > SUBMIT_MAX_SECONDS:
                break
            time.sleep(min(2.0, 0.1 * attempt) * (0.5 + self.rng.random()))
        self.ledger.write({"kind": "gave-up", "key": key, "owner": owner, "sha256": digest, "last": last,
                           "t": time.time()})
        with self.lock:
            self.stats.gave_up += 1
        return None

    def _take_job_number(self) -> bool:
        with self.lock:
            if self.stats.started >= self.jobs and not self.keep_going():
                return False
            self.stats.started += 1
            return True

    def new_key(self) -> str:
        return f"urn:uuid:{uuid.uuid4()}"

    def _submitter(self, index: int) -> None:
        rng = random.Random(self.rng.random())
        while not self.stop_submitting.is_set() and self._take_job_number():
            owner = rng.choice(self.target.users)["name"]
            key = self.new_key()
            big = rng.random() < self.big_fraction
            size = rng.randint(256 * 1024, 1536 * 1024) if big else rng.randint(512, 24 * 1024)
            payload = make_payload(key, size)
            if big:
                with self.lock:
                    self.stats.big_in_flight += 1
            try:
                self.submit_job(owner, payload, key, slow=0.01 if big else 0.0)
            finally:
                if big:
                    with self.lock:
                        self.stats.big_in_flight -= 1
            time.sleep(rng.uniform(0.0, self.pause))

    # -- terminals ----------------------------------------------------------------------------------
    def login(self, user: dict[str, str], printer: str) -> dict[str, Any] | None:
        started = time.monotonic()
        status, body = 0, None
        try:
            answer = requests.post(f"{self.target.lb_url}/api/v1/sessions", json={"printer": printer,
                                                                                  "badge": user["badge"]},
                                   timeout=LOGIN_TIMEOUT, **self.target.tls)
            status = answer.status_code
            body = answer.json() if status == 201 else None
        except (requests.RequestException, ValueError):
            status = 0
        latency = time.monotonic() - started if status == 201 else LOGIN_TIMEOUT
        now = time.time()
        with self.lock:
            self.stats.logins.append((now, latency, status))
            if status >= 500:
                self.stats.terminal_5xx += 1
        self.ledger.write({"kind": "login", "t": now, "user": user["name"], "printer": printer, "status": status,
                           "latency": round(time.monotonic() - started, 4)}, sync=False)
        return body

    def release(self, user: dict[str, str], printer: str, session: str, job_ids: list[str],
                *, origin: str = "terminal", confirm_interrupted: bool = False) -> dict[str, Any] | None:
        """Release `job_ids`, retrying with the same Idempotency-Key (re-login when the session is gone)."""
        key = f"rel-{uuid.uuid4()}"
        started = time.monotonic()
        last = ""
        for attempt in range(1, RELEASE_MAX_ATTEMPTS + 1):
            try:
                answer = requests.post(f"{self.target.lb_url}/api/v1/sessions/{session}/release",
                                       json={"jobs": job_ids, "confirm_interrupted": confirm_interrupted},
                                       headers={"Idempotency-Key": key},
                                       timeout=RELEASE_TIMEOUT, **self.target.tls)
                if answer.status_code == 200:
                    body = answer.json()
                    self.ledger.write({"kind": "release", "t": time.time(), "user": user["name"], "printer": printer,
                                       "key": key, "attempts": attempt, "origin": origin,
                                       "results": [{"id": r["id"], "status": r["status"]} for r in body["results"]]})
                    with self.lock:
                        self.stats.releases += 1
                        counts = self.stats.release_statuses
                        for r in body["results"]:
                            counts[r["status"]] = counts.get(r["status"], 0) + 1
                    return body
                last = f"{answer.status_code} {answer.text[:200]}"
                if answer.status_code >= 500:
                    with self.lock:
                        self.stats.terminal_5xx += 1
                if answer.status_code in (401, 404):  # the session is gone (e.g. Redis restarted)
                    again = self.login(user, printer)
                    if again:
                        session = again["session"]
                elif 400 <= answer.status_code < 500 and answer.status_code != 409:
                    break
            except (requests.RequestException, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"[:300]
            if time.monotonic() - started > RELEASE_MAX_SECONDS:
                break
            time.sleep(min(3.0, 0.2 * attempt))
        self.ledger.write({"kind": "release-gave-up", "t": time.time(), "user": user["name"], "printer": printer,
                           "key": key, "jobs": job_ids, "last": last, "origin": origin})
        with self.lock:
            self.stats.release_gave_up += 1
        return None

    def _terminal(self, index: int) -> None:
        rng = random.Random(self.rng.random())
        while not self.stop_terminals.is_set():
            user = rng.choice(self.target.users)
            printer = rng.choice(self.target.printers)
            body = self.login(user, printer)
            if body:
                ready = [j["id"] for j in body.get("jobs", []) if j.get("available") and j.get("state") == "held"
                         and j.get("state_reason") != "interrupted"]
                if ready:
                    self.release(user, printer, body["session"], ready[:RELEASE_BATCH])
            self.stop_terminals.wait(rng.uniform(0.1, 0.6))

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.n_submitters):
            self.threads.append(threading.Thread(target=self._submitter, args=(i,), name=f"submitter-{i}", daemon=True))
        for i in range(self.n_terminals):
            self.threads.append(threading.Thread(target=self._terminal, args=(i,), name=f"terminal-{i}", daemon=True))
        for thread in self.threads:
            thread.start()

    def submitters_done(self) -> bool:
        return not any(t.is_alive() for t in self.threads if t.name.startswith("submitter"))

    def stop(self, timeout: float = 240.0) -> None:
        self.stop_submitting.set()
        self.stop_terminals.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
