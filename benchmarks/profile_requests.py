"""Where a request's CPU goes: the servers' CPU per badge login, release or submission, by process,
and a py-spy profile of every collector and analyst process while one client makes them one at a
time (issue 13, parts 3, 4 and 7).

    flock /tmp/pullprint-bench.lock .venv/bin/python benchmarks/profile_requests.py \\
        --what login --count 600 --out benchmarks/results/profile_login.json

A LocalCluster (3 collectors behind HAProxy, the analyst on SQLite, Redis, all with TLS) and, through
HAProxy, as benchmarks/submit_release.py makes them:
- `login`: a user with 3 held jobs badges in and out;
- `release`: a user's 100 KB jobs, submitted beforehand, are released one per request from one
  session at printer p1 (an ippeveprinter), each timed until its last byte is in the printer's sink;
- `submit`: 100 KB documents are submitted, each acknowledged with two copies and registered.
py-spy (in the dev extra) samples
only the thread holding the GIL (`--gil`: its idle detection takes threads blocked in a read or a
select for running on this machine), so C code that releases the GIL (a TLS handshake's
arithmetic, SQLite's fsync) is partly missed; its stacks are summed by what they were doing (`CATEGORIES`, the first
that matches a stack from the leaf up) and by the project's own functions on them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.submit_release import (  # noqa: E402
    Client,
    Sink,
    TreeCpu,
    machine,
    make_documents,
    percentiles,
    start_cluster,
    state_dir,
)

# A sample inside a request (gunicorn handling it, Flask's app, a release in the collector's
# release pool) or outside (background threads, gunicorn's own loop); inside, whose code was
# running: the first frame from the leaf up that is the project's own (OWN) or that one of these
# matches.
IN_REQUEST = re.compile(r"handle_request|wsgi_app|^handle \(.*gunicorn|release_in_order")
CATEGORIES = [
    ("TLS handshake", re.compile(r"do_handshake|ssl_wrap_socket|wrap_socket")),
    ("TLS read/write", re.compile(r"\(ssl\.py\)")),
    ("SQLite / SQLAlchemy", re.compile(r"sqlalchemy/|sqlite3")),
    ("Redis client", re.compile(r"redis/")),
    ("HTTP client (requests, urllib3)", re.compile(r"requests/|urllib3/|http/client")),
    ("JSON", re.compile(r"json/")),
    ("logging", re.compile(r"logging/|access_log")),
    ("Flask, Werkzeug", re.compile(r"flask/|werkzeug/")),
    ("gunicorn", re.compile(r"gunicorn/")),
]
OWN = re.compile(r"^(\S+) \((?:.*/)?(collector|analyst|pullprint|nodeserver)/([\w/]+\.py)(?::\d+)?\)$")


def role(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    line = b" ".join(argv).decode(errors="replace")
    for word in ("haproxy", "redis-server", "cupsd", "printer_sim", "printer-sim", "analyst", "collector"):
        if word in line:
            return word.replace("_", "-")
    return Path(argv[0].decode(errors="replace")).name or "?"


def cpu_by_role() -> dict[str, float]:
    """CPU seconds of this process's descendants, by role (TreeCpu.seconds, split)."""
    out: dict[str, float] = collections.defaultdict(float)
    for pid, ticks in TreeCpu.descendants().items():
        out[role(pid)] += ticks / TreeCpu.TICK
    return dict(out)


def python_servers() -> list[tuple[int, str]]:
    """(pid, role) of every collector and analyst process (gunicorn masters and workers)."""
    return sorted((pid, who) for pid in TreeCpu.descendants() if (who := role(pid)) in ("collector", "analyst"))


def category(frames: list[str]) -> str:
    """What a sampled stack (root first) was doing."""
    if not any(IN_REQUEST.search(frame) for frame in frames):
        return "outside requests (background threads, the server's loop)"
    for frame in reversed(frames):  # from the leaf up, the first frame that is ours or a library's we name
        if OWN.match(frame):
            return "the project's own code"
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                return name
    return "other"


def summarise(raw_files: dict[str, list[Path]]) -> dict[str, Any]:
    """Collapsed stacks (py-spy --format raw: `frame;frame;... count`) summed by category and own function."""
    summary: dict[str, Any] = {}
    for who, files in raw_files.items():
        categories: collections.Counter[str] = collections.Counter()
        own: collections.Counter[str] = collections.Counter()
        total = 0
        for path in files:
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                n, frames = int(count), stack.split(";")
                total += n
                categories[category(frames)] += n
                seen = set()
                for frame in frames:
                    if (m := OWN.match(frame)) and (key := f"{m[2]}/{m[3]}:{m[1]}") not in seen:
                        seen.add(key)
                        own[key] += n
        summary[who] = {
            "samples": total,
            "by_category_pct": {k: round(100 * v / total, 1) for k, v in categories.most_common()} if total else {},
            "own_functions_inclusive_pct": {k: round(100 * v / total, 1) for k, v in own.most_common(25)}
            if total else {}}
    return summary


WHAT = {
    "login": "badge logins and logouts, one at a time; 3 held jobs listed at each login",
    "release": "releases of one 100 KB job each from one session at printer p1, one at a time, each "
               "timed from the request to its last byte at the printer",
    "submit": "submissions of a 100 KB document, one at a time, each answered 201 once it has two "
              "copies and is registered",
}


class Operations:
    """One kind of request, made one at a time: `prepare(n)` readies the next n (outside any
    measurement), `run()` makes the next one and returns the seconds it took."""

    def __init__(self, what: str, cluster: Any, client: Client, base: Path) -> None:
        self.what, self.client = what, client
        self.users = {u["name"]: u for u in cluster.describe()["users"]}
        self.printers = [p["id"] for p in cluster.printers[:2]]
        self.sink = Sink(cluster.printers[0]["sink_dir"])
        self.base = base
        self.ready: list[tuple[Path | str, str]] = []
        self.done = 0
        self.token: str | None = None
        if what == "login":
            document = base / "doc.ps"
            document.write_bytes(b"%!PS\n" + b"% page\n" * 2000)
            for _ in range(3):
                client.submit("carol", document)

    def prepare(self, count: int) -> None:
        if self.what == "login":
            return
        documents = make_documents(self.base / f"docs-{self.done}", count, 100_000)
        if self.what == "submit":
            self.ready = list(documents)
            return
        # The released jobs of one round are printed, no longer held, before the next is submitted.
        self.ready = [(self.client.submit("bob", path), sha) for path, sha in documents]
        self.token = self._login("bob")

    def run(self) -> float:
        self.done += 1
        if self.what == "login":
            t0 = time.perf_counter()
            token = self._login("carol", self.printers[self.done % 2])
            took = time.perf_counter() - t0
            self.client.logout(token)
            return took
        item, sha = self.ready.pop(0)
        if self.what == "submit":
            t0 = time.perf_counter()
            self.client.submit("bob", Path(item))
            return time.perf_counter() - t0
        asked = time.time()
        reply = self.client.release(self.token or "", {"jobs": [item]})
        if reply.status_code in (401, 404):  # the session went idle: log in again, ask again
            self.token = self._login("bob")
            asked = time.time()
            reply = self.client.release(self.token, {"jobs": [item]})
        status = reply.json()["results"][0]["status"] if reply.ok else f"http-{reply.status_code}"
        if status not in ("printed", "queued"):  # queued: the collector prints it in the background
            raise RuntimeError(f"release of {item} answered {status}: {reply.text[:200]}")
        return self.sink.wait(sha) - asked

    def _login(self, user: str, printer: str | None = None) -> str:
        reply = self.client.login(printer or self.printers[0], self.users[user]["badge"])
        if reply.status_code != 201:
            raise RuntimeError(f"login answered {reply.status_code}: {reply.text[:200]}")
        return str(reply.json()["session"])


WARM = 50  # operations before measuring: connections open, caches filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=sorted(WHAT), default="login")
    parser.add_argument("--count", type=int, default=200,
                        help="operations measured, then as many profiled (a release: at most 200, the "
                             "held jobs one user may have)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/profile_<what>.json")
    args = parser.parse_args(argv)
    if args.what == "release" and args.count > 200:
        parser.error("--count: a user may hold at most 200 jobs (max_held_jobs_per_user), each round's released")
    out = args.out or ROOT / "benchmarks" / "results" / f"profile_{args.what}.json"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        parser.error("py-spy is not installed: scripts/run setup installs it")

    base = state_dir("pullprint-profile-")
    (base / "cluster").mkdir(mode=0o755)
    cluster = start_cluster(base)
    try:
        client = Client(cluster)
        operations = Operations(args.what, cluster, client, base)
        operations.prepare(WARM)
        for _ in range(WARM):
            operations.run()
        # Idle CPU (heartbeats, health checks, the SNMP poller), to take out of the per-operation figure.
        idle0, t_idle = cpu_by_role(), time.perf_counter()
        time.sleep(5)
        idle1, idle_s = cpu_by_role(), time.perf_counter() - t_idle

        # The operations alone, unprofiled: CPU per operation and latency.
        operations.prepare(args.count)
        before, t0 = cpu_by_role(), time.perf_counter()
        took = [operations.run() for _ in range(args.count)]
        after, elapsed = cpu_by_role(), time.perf_counter() - t0
        per_operation = {}
        for who in sorted(set(after) | set(before)):
            idle_rate = (idle1.get(who, 0) - idle0.get(who, 0)) / idle_s
            spent = after.get(who, 0) - before.get(who, 0) - idle_rate * elapsed
            per_operation[who] = round(max(spent, 0) * 1000 / args.count, 2)

        # As many again under py-spy.
        operations.prepare(args.count)
        folder = base / "profiles"
        folder.mkdir()
        spies, raw_files = [], collections.defaultdict(list)
        for pid, who in python_servers():
            path = folder / f"{who}-{pid}.txt"
            raw_files[who].append(path)
            spies.append(subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", str(args.rate),
                                           "--gil", "--format", "raw", "--output", str(path)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        for _ in range(args.count):
            operations.run()
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)
        result = {
            "machine": machine(), "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "what": f"{WHAT[args.what]}; through HAProxy, a LocalCluster of 3 collectors, the analyst on "
                    "SQLite, Redis, TLS between all",
            "operation": args.what, "count": args.count, "latency_s": percentiles(took),
            "server_cpu_ms_per_operation_by_process": per_operation,
            "server_cpu_ms_per_operation": round(sum(per_operation.values()), 2),
            "profile": summarise({k: [p for p in v if p.exists()] for k, v in raw_files.items()})}
    finally:
        cluster.stop()
        if not os.environ.get("PULLPRINT_KEEP_PROFILES"):
            shutil.rmtree(base, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("latency_s", "server_cpu_ms_per_operation_by_process",
                                             "server_cpu_ms_per_operation")}, indent=1))
    for who, part in result["profile"].items():
        print(who, json.dumps(part["by_category_pct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
