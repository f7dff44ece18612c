"""Load test for a running pullprint cluster: workstations submitting documents, terminals releasing them.

    pullprint demo --state-dir state/demo &                      # or any cluster that wrote cluster.json
    PULLPRINT_CLUSTER_JSON=state/demo/cluster.json \\
        locust -f tests/load/locustfile.py --headless -u 50 -r 10 -t 2m

The cluster is described by ``cluster.json`` (``lb_url``, ``users``, ``printers``, ``secrets_dir``);
the submit token is read from ``secrets_dir/submit_token``. Everything goes through the load
balancer, the way CUPS backends and release terminals reach the cluster.

- ``Workstation`` sends documents of 20 KB to 2 MB exactly as the CUPS backend does: a chunked
  ``POST /api/v1/jobs`` with the job's metadata in headers and a fresh ``Idempotency-Key`` (the CUPS
  job-uuid). Small documents are the most common.
- ``Terminal`` is a release station: a user badges in (or types user + PIN) at a printer, looks at the
  list, releases some of the jobs, and logs out. A job another terminal released first answers
  ``not-releasable``; that is the exactly-once guarantee at work, not a failure.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task

CHUNK = 64 * 1024
KB = 1024
MB = 1024 * 1024
# One random buffer, sliced per document: random bytes do not compress, so no layer can cheat.
_NOISE = os.urandom(2 * MB)
RELEASE_OK = {"printed", "queued", "not-releasable"}


@cache
def cluster() -> dict[str, Any]:
    path = os.environ.get("PULLPRINT_CLUSTER_JSON")
    if not path:
        raise RuntimeError("set PULLPRINT_CLUSTER_JSON to the cluster.json of a running cluster "
                           "(pullprint demo writes STATE_DIR/cluster.json)")
    return json.loads(Path(path).read_text())  # type: ignore[no-any-return]


@cache
def submit_token() -> str:
    return (Path(cluster()["secrets_dir"]) / "submit_token").read_text().strip()


def trust_the_cluster(user: HttpUser) -> None:
    """Verify the cluster's TLS certificates with its own CA (cluster.json's ``ca_file``)."""
    ca_file = cluster().get("ca_file")
    if ca_file:
        user.client.verify = ca_file


def _default_host() -> str | None:
    try:
        return str(cluster()["lb_url"])
    except (RuntimeError, OSError, KeyError, ValueError):
        return None  # locust's --host then has to say where the cluster is


def document(size: int) -> bytes:
    """A PostScript-looking document of exactly `size` bytes."""
    head = f"%!PS-Adobe-3.0\n%%Title: load {uuid.uuid4()}\n%%Pages: 1\n%%EndComments\n".encode()
    tail = b"\nshowpage\n%%EOF\n"
    body = size - len(head) - len(tail)
    start = random.randrange(0, len(_NOISE) - body + 1)
    return head + _NOISE[start:start + body] + tail


def chunks(data: bytes):
    """The body as a generator: requests then sends it chunked, as the backend does."""
    for offset in range(0, len(data), CHUNK):
        yield data[offset:offset + CHUNK]


class Workstation(HttpUser):
    """Someone printing to the shared queue; the request is what the CUPS backend sends."""

    weight = 3
    wait_time = between(0.5, 3)
    host = _default_host()

    def on_start(self) -> None:
        trust_the_cluster(self)
        self.user = random.choice(cluster()["users"])["name"]
        self.hostname = f"ws{random.randrange(1, 500):03d}"
        self.cups_job = random.randrange(1, 10_000)

    def print_document(self, size: int, kind: str, content_type: str = "application/postscript") -> None:
        self.cups_job += 1
        headers = {
            "Authorization": f"Bearer {submit_token()}",
            "User-Agent": "pullprint-cups-backend/1",
            "X-Pullprint-Owner": self.user,
            "X-Pullprint-Title": f"{kind}-{self.cups_job}.ps",
            "X-Pullprint-Copies": "1",
            "X-Pullprint-Options": "sides=two-sided-long-edge",
            "X-Pullprint-Origin-Host": self.hostname,
            "X-Pullprint-Cups-Job-Id": str(self.cups_job),
            "Content-Type": content_type,
            "Idempotency-Key": f"urn:uuid:{uuid.uuid4()}",
        }
        with self.client.post("/api/v1/jobs", data=chunks(document(size)), headers=headers,
                              name=f"/api/v1/jobs [{kind}]", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"submit answered {response.status_code}: {response.text[:200]}")
            elif not response.json().get("id"):
                response.failure("submit answered 201 without a job id")

    @task(6)
    def short_document(self) -> None:
        """A letter, a form, an e-mail: 20-100 KB."""
        self.print_document(random.randint(20 * KB, 100 * KB), "small")

    @task(3)
    def report(self) -> None:
        """A report with a few images: 100-500 KB."""
        self.print_document(random.randint(100 * KB, 500 * KB), "medium")

    @task(1)
    def slides(self) -> None:
        """Slides or a scanned document: 0.5-2 MB."""
        self.print_document(random.randint(512 * KB, 2 * MB), "large")


class Terminal(HttpUser):
    """A release station next to a printer: badge in, look, release some jobs, log out."""

    weight = 1
    wait_time = between(1, 4)
    host = _default_host()

    def on_start(self) -> None:
        trust_the_cluster(self)
        printer = random.choice(cluster()["printers"])
        self.printer = printer["id"]
        if printer.get("terminal_token"):  # the demo's enrolled station at that printer
            self.client.headers["Authorization"] = f"Bearer {printer['terminal_token']}"

    def log_in(self, by_pin: bool = False) -> dict[str, Any] | None:
        person = random.choice(cluster()["users"])
        body: dict[str, Any] = {"printer": self.printer}
        if by_pin:
            body.update(user=person["name"], pin=person["pin"])
        else:
            body["badge"] = person["badge"]
        name = "/api/v1/sessions [pin]" if by_pin else "/api/v1/sessions [badge]"
        with self.client.post("/api/v1/sessions", json=body, name=name, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"login answered {response.status_code}: {response.text[:200]}")
                return None
            return response.json()  # type: ignore[no-any-return]

    def look(self, token: str) -> list[dict[str, Any]]:
        with self.client.get(f"/api/v1/sessions/{token}", name="/api/v1/sessions/[token]",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"listing answered {response.status_code}: {response.text[:200]}")
                return []
            return [j for j in response.json().get("jobs", []) if j.get("available")]

    def release(self, token: str, body: dict[str, Any], name: str) -> None:
        with self.client.post(f"/api/v1/sessions/{token}/release", json=body, name=name, catch_response=True,
                              headers={"Idempotency-Key": uuid.uuid4().hex}) as response:
            if response.status_code != 200:
                response.failure(f"release answered {response.status_code}: {response.text[:200]}")
                return
            wrong = [r for r in response.json().get("results", []) if r.get("status") not in RELEASE_OK]
            if wrong:
                response.failure(f"release results: {wrong[:3]}")

    def log_out(self, token: str) -> None:
        with self.client.delete(f"/api/v1/sessions/{token}", name="/api/v1/sessions/[token] (logout)",
                                catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"logout answered {response.status_code}: {response.text[:200]}")

    @task(6)
    def release_some(self) -> None:
        """The usual visit: badge, list, release one to three of the jobs shown, log out."""
        session = self.log_in()
        if session is None:
            return
        token = session["session"]
        jobs = self.look(token)
        if jobs:
            chosen = random.sample(jobs, k=min(len(jobs), random.randint(1, 3)))
            self.release(token, {"jobs": [j["id"] for j in chosen]}, "/api/v1/sessions/[token]/release [some]")
        self.log_out(token)

    @task(2)
    def release_all(self) -> None:
        """Badge in with the PIN and press "print all"."""
        session = self.log_in(by_pin=True)
        if session is None:
            return
        token = session["session"]
        if any(j.get("available") for j in session.get("jobs", [])):
            self.release(token, {"all": True}, "/api/v1/sessions/[token]/release [all]")
        self.log_out(token)

    @task(1)
    def change_of_mind(self) -> None:
        """Badge in, look at the list, walk away without releasing anything."""
        session = self.log_in()
        if session is not None:
            self.look(session["session"])
            self.log_out(session["session"])
