"""Load on a converged site while it is changed under it: submissions, badge logins and releases
through HAProxy, as the CUPS backend and the release stations send them, with every outcome recorded.

Submissions retry a 503, a 5xx or a lost connection with the same Idempotency-Key, as the backend
does (the cluster must then hold the job once). Each user stays under the per-user cap of held jobs
(the submitters skip a user whose unreleased jobs reach `per_user_cap`). `check` then holds the
analyst's records and the printer's sink against what was acknowledged and released.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

SUBMIT_RETRY_SECONDS = 120.0  # the backend's own retry window is longer; a job refused past this is a failure


@dataclass
class Figures:
    """What the load saw; `phases` marks when each change under it began and ended (seconds from start)."""

    acked: dict[str, str] = field(default_factory=dict)        # job id -> sha256 of its document
    owners: dict[str, str] = field(default_factory=dict)       # job id -> owner
    submit_retries: int = 0
    failed_submissions: list[str] = field(default_factory=list)
    logins: list[tuple[float, float]] = field(default_factory=list)  # (ended at, seconds)
    offline_logins: int = 0
    failed_logins: list[str] = field(default_factory=list)
    printed: set[str] = field(default_factory=set)
    release_other: Counter[str] = field(default_factory=Counter)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        took = sorted(seconds for _, seconds in self.logins)
        p99 = took[min(len(took) - 1, int(len(took) * 0.99))] if took else None
        return {"jobs_acknowledged": len(self.acked), "submit_retries": self.submit_retries,
                "failed_submissions": len(self.failed_submissions), "logins": len(self.logins),
                "offline_logins": self.offline_logins, "failed_logins": len(self.failed_logins),
                "longest_login_s": round(took[-1], 3) if took else None,
                "login_p99_s": round(p99, 3) if p99 is not None else None,
                "logins_over_2s": sum(1 for t in took if t > 2.0), "printed": len(self.printed),
                "release_answers_other_than_printed": dict(self.release_other),
                "phases_s": {k: [round(a, 1), round(b, 1)] for k, (a, b) in self.phases.items()}}

    def logins_during(self, phase: str) -> list[float]:
        start, end = self.phases[phase]
        return [seconds for ended, seconds in self.logins if start <= ended <= end + 5]


class Load:
    """Submitters and release stations through `lb_url` until `stop()`; the figures in `figures`."""

    def __init__(self, lb_url: str, ca_file: str, submit_token: str, users: dict[str, str],
                 terminals: list[str], printer: str, *, submitters: int = 2, per_user_cap: int = 120,
                 pause: float = 0.2) -> None:
        self.lb_url, self.ca_file, self.submit_token = lb_url, ca_file, submit_token
        self.users, self.terminals, self.printer = users, terminals, printer
        self.submitters, self.per_user_cap, self.pause = submitters, per_user_cap, pause
        self.figures = Figures()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def now(self) -> float:
        return time.monotonic() - self.started

    def start(self) -> None:
        self.started = time.monotonic()
        workers = [self._submitter] * self.submitters + [self._station] * len(self.terminals)
        for i, work in enumerate(workers):
            thread = threading.Thread(target=work, args=(i,), daemon=True, name=f"load-{i}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=SUBMIT_RETRY_SECONDS + 30)

    def phase(self, name: str) -> _Phase:
        return _Phase(self, name)

    # --- submitting, as the backend does ---
    def _unreleased(self, user: str) -> int:
        with self._lock:
            return sum(1 for job, owner in self.figures.owners.items()
                       if owner == user and job not in self.figures.printed)

    def _submitter(self, index: int) -> None:
        session = requests.Session()
        names = sorted(self.users)
        n = index
        while not self._stop.is_set():
            user = names[n % len(names)]
            n += 1
            if self._unreleased(user) >= self.per_user_cap:
                time.sleep(self.pause)
                continue
            self.submit(session, user, f"load {uuid.uuid4().hex}\n".encode() + os.urandom(3000).hex().encode())
            time.sleep(self.pause)

    def submit(self, session: requests.Session, user: str, document: bytes) -> None:
        """One document for `user`, sent as the backend sends it (retried on a 5xx with the same key)."""
        key = f"urn:uuid:{uuid.uuid4()}"
        headers = {"Authorization": f"Bearer {self.submit_token}", "X-Pullprint-Owner": user,
                   "X-Pullprint-Title": f"load-{key[9:17]}", "Idempotency-Key": key,
                   "Content-Type": "application/octet-stream"}
        deadline = time.monotonic() + SUBMIT_RETRY_SECONDS
        last = ""
        while time.monotonic() < deadline:
            try:
                answer = session.post(f"{self.lb_url}/api/v1/jobs", data=document, headers=headers,
                                      verify=self.ca_file, timeout=30)
            except requests.RequestException as exc:
                last = type(exc).__name__
            else:
                if answer.status_code in (200, 201):
                    with self._lock:
                        self.figures.acked[answer.json()["id"]] = hashlib.sha256(document).hexdigest()
                        self.figures.owners[answer.json()["id"]] = user
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
                if answer.status_code < 500:
                    break  # the backend gives up on a 4xx too
            with self._lock:
                self.figures.submit_retries += 1
            time.sleep(1.0)
        with self._lock:
            self.figures.failed_submissions.append(f"{user} {key}: {last}")

    # --- a release station: badge in, release a few jobs, badge out ---
    def _station(self, index: int) -> None:
        terminal = self.terminals[index - self.submitters]
        session = requests.Session()
        auth = {"Authorization": f"Bearer {terminal}"}
        names = sorted(self.users)
        n = index
        while not self._stop.is_set():
            user = names[n % len(names)]
            n += 1
            started = time.monotonic()
            try:
                answer = session.post(f"{self.lb_url}/api/v1/sessions", json={"printer": self.printer,
                                      "badge": self.users[user]}, headers=auth, verify=self.ca_file, timeout=10)
                took = time.monotonic() - started
                ok = answer.status_code == 201
                failure = "" if ok else f"{user}: {answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                took, ok, failure = time.monotonic() - started, False, f"{user}: {type(exc).__name__}"
            with self._lock:
                self.figures.logins.append((self.now(), took))
                if not ok:
                    self.figures.failed_logins.append(failure)
            if not ok:
                time.sleep(0.5)
                continue
            body = answer.json()
            if any("offline" in w for w in body.get("warnings", [])):
                with self._lock:
                    self.figures.offline_logins += 1
            wanted = [job["id"] for job in body["jobs"] if job.get("available")][:3]
            if wanted:
                self._release(session, auth, body["session"], wanted)
            with contextlib.suppress(requests.RequestException):
                session.delete(f"{self.lb_url}/api/v1/sessions/{body['session']}", headers=auth,
                               verify=self.ca_file, timeout=10)
            time.sleep(self.pause)

    def _release(self, session: requests.Session, auth: dict[str, str], token: str, jobs: list[str]) -> None:
        try:
            answer = session.post(f"{self.lb_url}/api/v1/sessions/{token}/release", json={"jobs": jobs},
                                  headers={**auth, "Idempotency-Key": uuid.uuid4().hex}, verify=self.ca_file,
                                  timeout=120)
        except requests.RequestException as exc:
            with self._lock:
                self.figures.release_other[type(exc).__name__] += 1
            return
        with self._lock:
            if answer.status_code != 200:
                self.figures.release_other[f"http-{answer.status_code}"] += 1
                return
            for result in answer.json().get("results", []):
                if result.get("status") == "printed":
                    self.figures.printed.add(result["id"])
                else:
                    self.figures.release_other[str(result.get("status"))] += 1


class _Phase:
    """`with load.phase("upgrade"):` records when a change under the load began and ended."""

    def __init__(self, load: Load, name: str) -> None:
        self.load, self.name = load, name

    def __enter__(self) -> None:
        self.began = self.load.now()

    def __exit__(self, *_exc: object) -> None:
        self.load.figures.phases[self.name] = (self.began, self.load.now())


def check(figures: Figures, records: dict[str, dict[str, Any]], sink: dict[str, str]) -> dict[str, Any]:
    """Every acknowledged job held or printed exactly once: `records` the analyst's jobs of the load's
    users by id, `sink` the printer's documents (name -> sha256)."""
    at_printer = Counter(sink.values())
    by_document = Counter(record.get("sha256") for record in records.values())
    lost = [job for job in figures.acked if job not in records
            or records[job]["state"] in ("expired", "deleted")]
    printed_twice = [job for job, digest in figures.acked.items() if at_printer[digest] > 1]
    registered_twice = [job for job, digest in figures.acked.items() if by_document[digest] > 1]
    # Printed by the analyst's word but not at the printer, or at the printer while still held.
    printed_unseen = [job for job in figures.acked
                      if records.get(job, {}).get("state") == "printed" and at_printer[figures.acked[job]] == 0]
    # (A release cut short leaves its job held as interrupted, maybe partly printed: the user decides.)
    held_but_printed = [job for job in figures.acked
                        if records.get(job, {}).get("state") == "held"
                        and records[job].get("state_reason") != "interrupted" and at_printer[figures.acked[job]] > 0]
    interrupted = [job for job in figures.acked if records.get(job, {}).get("state_reason") == "interrupted"]
    phantom = [job for job in records if job not in figures.acked]
    return {"lost": lost, "printed_twice": printed_twice, "registered_twice": registered_twice,
            "printed_but_not_at_the_printer": printed_unseen, "held_but_at_the_printer": held_but_printed,
            "phantom": phantom, "interrupted": interrupted}
