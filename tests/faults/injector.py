"""The fault injector: one failure at a time, at random moments, each recorded with its time.

Kinds:
- ``kill-collector``            SIGKILL a random collector's whole process group, restart it later;
- ``kill-collector-mid-upload`` start a big, slow upload straight to a collector, kill it half-way;
- ``kill-collector-mid-replication`` the same, killed the moment the body is in (spool fsync,
                                replica copy, registration run now);
- ``kill-collector-mid-print``  slow the printers down, wait for a job in `releasing`, kill the
                                collector that is sending it;
- ``kill-analyst``, ``kill-redis`` SIGKILL and restore (Redis comes back empty on its old port);
- ``cut-analyst-link``, ``cut-redis-link``, ``blackhole-analyst-link``, ``delay-analyst-link``,
  ``delay-redis-link``          via the TCP proxies between the collectors and the analyst / Redis.

Never more than one collector is down at once, and faults do not overlap: the guarantees are for one
failure at a time. A killed collector comes back before the next fault starts.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from localcluster.cluster import LocalCluster
from tests.faults import proxy as proxy_mod
from tests.faults.workload import Workload, make_payload

KILL_KINDS = ("kill-collector", "kill-collector-mid-upload", "kill-collector-mid-replication",
              "kill-collector-mid-print")
OTHER_KINDS = ("kill-analyst", "kill-redis", "cut-analyst-link", "cut-redis-link", "blackhole-analyst-link",
               "delay-analyst-link", "delay-redis-link")


@dataclass
class Links:
    """Control ports of the proxies between collectors and the analyst / Redis (name -> port)."""

    control: dict[str, int] = field(default_factory=dict)

    def set(self, name: str, mode: str) -> str:
        port = self.control.get(name)
        return proxy_mod.command(port, mode) if port else "no-proxy"


class Injector:
    def __init__(self, cluster: LocalCluster, workload: Workload, links: Links, *, kills: int,
                 other_every: int = 4, seed: int | None = None, down: tuple[float, float] = (0.3, 2.5),
                 gap: tuple[float, float] = (0.3, 1.5), other_kinds: tuple[str, ...] = OTHER_KINDS) -> None:
        self.cluster, self.workload, self.links = cluster, workload, links
        self.other_kinds = other_kinds
        self.kills_wanted = kills
        self.other_every = other_every
        self.down, self.gap = down, gap
        self.rng = random.Random(seed)
        self.faults: list[dict[str, Any]] = []
        self.kills = 0
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.errors: list[str] = []

    # -- helpers ------------------------------------------------------------------------------------
    def _record(self, kind: str, target: str, started: float, **detail: Any) -> None:
        self.faults.append({"kind": kind, "target": target, "t_start": started, "t_end": time.time(), **detail})

    def _analyst(self, path: str) -> Any:
        answer = requests.get(f"{self.cluster.analyst_url}/api/v1{path}", timeout=3,
                              verify=self.cluster.ca_file, cert=self.cluster.admin_cert)
        answer.raise_for_status()
        return answer.json()

    def _sleep(self, span: tuple[float, float]) -> None:
        self.stop_event.wait(self.rng.uniform(*span))

    def _restart_collector(self, collector_id: str) -> None:
        for attempt in range(3):
            try:
                self.cluster.start_collector(collector_id)
                return
            except Exception as exc:  # noqa: BLE001 - recorded, retried
                self.errors.append(f"restart {collector_id} attempt {attempt + 1}: {exc}"[:500])
                time.sleep(1)
        raise RuntimeError(f"collector {collector_id} would not come back")

    def _kill_and_restart(self, kind: str, collector_id: str, started: float, **detail: Any) -> None:
        self.cluster.kill_collector(collector_id)
        killed_at = time.time()
        self._sleep(self.down)
        self._restart_collector(collector_id)
        self.kills += 1
        self._record(kind, collector_id, started, killed_at=killed_at, **detail)

    def _upload_then_kill(self, kind: str, at_fraction: float) -> None:
        """A big, slow upload straight to one collector; kill that collector when `at_fraction` is sent."""
        collector_id = self.rng.choice(sorted(self.cluster.collectors))
        url = self.cluster.collectors[collector_id].url
        reached = threading.Event()
        key = self.workload.new_key()
        owner = self.rng.choice(self.workload.target.users)["name"]
        payload = make_payload(key, self.rng.randint(1024 * 1024, 2 * 1024 * 1024))

        def progress(fraction: float) -> None:
            if fraction >= at_fraction:
                reached.set()

        uploader = threading.Thread(target=self.workload.submit_job, args=(owner, payload, key), daemon=True,
                                    kwargs={"first_url": url, "slow": 0.02, "on_progress": progress,
                                            "origin": kind}, name=f"{kind}-upload")
        started = time.time()
        uploader.start()
        reached.wait(20)
        self._kill_and_restart(kind, collector_id, started, key=key, reached=reached.is_set())

    def _kill_mid_print(self) -> None:
        control = self.cluster.sim.control
        printers = [p["id"] for p in self.cluster.printers]
        for printer in printers:
            control.sink(printer, delay_seconds=2.0)
        started = time.time()
        victim, job = None, None
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not self.stop_event.is_set():
                jobs = self._analyst("/jobs?state=releasing&limit=20")["jobs"]
                for candidate in jobs:
                    claim = candidate.get("claim") or {}
                    locations = candidate.get("locations", [])
                    by = claim.get("by")
                    victim = by if by in locations else (locations[0] if locations else by)
                    if victim in self.cluster.collectors:
                        job = candidate["id"]
                        break
                if job:
                    break
                time.sleep(0.1)
            if not job:
                victim = self.rng.choice(sorted(self.cluster.collectors))
            time.sleep(self.rng.uniform(0.2, 1.5))  # somewhere in the printer's 2.5 s
            assert victim is not None
            self.cluster.kill_collector(victim)
        finally:
            for printer in printers:
                control.sink(printer, delay_seconds=0)
        killed_at = time.time()
        self._sleep(self.down)
        self._restart_collector(victim)
        self.kills += 1
        self._record("kill-collector-mid-print", victim, started, killed_at=killed_at, job=job)

    # -- one fault of each kind ---------------------------------------------------------------------
    def inject(self, kind: str) -> None:
        started = time.time()
        if kind == "kill-collector":
            self._kill_and_restart(kind, self.rng.choice(sorted(self.cluster.collectors)), started)
        elif kind == "kill-collector-mid-upload":
            self._upload_then_kill(kind, self.rng.uniform(0.2, 0.8))
        elif kind == "kill-collector-mid-replication":
            self._upload_then_kill(kind, 1.0)
        elif kind == "kill-collector-mid-print":
            self._kill_mid_print()
        elif kind == "kill-analyst":
            self.cluster.stop_analyst(kill=True)
            self._sleep((2.0, 6.0))
            self.cluster.start_analyst_again()
            self._record(kind, "analyst", started)
        elif kind == "kill-redis":
            self.cluster.stop_redis(kill=True)
            self._sleep((0.5, 3.0))
            self.cluster.start_redis_again()
            self._record(kind, "redis", started)
        elif kind.endswith("-link"):
            mode, name = kind.split("-")[0], kind.split("-")[1]
            line = f"delay {self.rng.uniform(0.2, 1.2):.2f}" if mode == "delay" else mode
            answer = self.links.set(name, line)
            try:
                self._sleep((2.0, 5.0))
            finally:
                self.links.set(name, "pass")
            self._record(kind, name, started, mode=line, proxy=answer)
        else:
            raise ValueError(kind)

    def _next_kind(self, index: int) -> str:
        if self.other_every and index % self.other_every == self.other_every - 1:
            choices = [k for k in self.other_kinds
                       if not k.endswith("-link") or k.split("-")[1] in self.links.control]
            return self.rng.choice(choices)
        return self.rng.choices(KILL_KINDS, weights=(3, 2, 2, 2))[0]

    def run(self, deadline: float | None = None) -> None:
        index = 0
        while not self.stop_event.is_set() and (self.kills < self.kills_wanted
                                                or self.workload.stats.started < self.workload.jobs):
            if deadline and time.monotonic() > deadline:
                break
            kind = self._next_kind(index)
            index += 1
            try:
                self.inject(kind)
            except Exception as exc:  # noqa: BLE001 - recorded; the suite fails on it through the report
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:500])
                self.restore()
            self._sleep(self.gap)

    def start(self, deadline: float | None = None) -> None:
        self.thread = threading.Thread(target=self.run, args=(deadline,), name="injector", daemon=True)
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self.thread:
            self.thread.join(timeout)

    def restore(self) -> None:
        """Everything back: links passing, Redis and the analyst up, every collector running."""
        for name in self.links.control:
            try:
                self.links.set(name, "pass")
            except OSError as exc:
                self.errors.append(f"restore link {name}: {exc}")
        if not self.cluster.daemons["redis"].alive():
            self.cluster.start_redis_again()
        if not self.cluster.daemons["analyst"].alive():
            self.cluster.start_analyst_again()
        for collector_id, process in self.cluster.collectors.items():
            if process.daemon is None or not process.daemon.alive():
                self._restart_collector(collector_id)
        for printer in self.cluster.printers:
            self.cluster.sim.control.sink(printer["id"], delay_seconds=0)

    def summary(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for fault in self.faults:
            by_kind[fault["kind"]] = by_kind.get(fault["kind"], 0) + 1
        return {"total": len(self.faults), "collector_kills": self.kills, "by_kind": by_kind,
                "errors": self.errors}

    def dump(self) -> str:
        return json.dumps(self.faults)
