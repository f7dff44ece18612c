"""Where a badge login's CPU goes: the servers' CPU per login, by process, and a py-spy profile of
every collector and analyst process while one terminal badges in and out (issue 13, parts 4 and 7).

    flock /tmp/pullprint-bench.lock .venv/bin/python benchmarks/profile_login.py \\
        --logins 600 --out benchmarks/results/profile_login.json

A LocalCluster (3 collectors behind HAProxy, the analyst on SQLite, Redis, all with TLS), a user with
3 held jobs, and `--logins` badge logins and logouts through HAProxy, one at a time, as
benchmarks/submit_release.py makes them. py-spy (in the dev extra) samples
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

from benchmarks.submit_release import Client, TreeCpu, machine, percentiles, start_cluster, state_dir  # noqa: E402

# A sample inside a request (gunicorn handling it, Flask's app) or outside (background threads,
# gunicorn's own loop); inside, whose code was running: the first frame from the leaf up that is the
# project's own (OWN) or that one of these matches.
IN_REQUEST = re.compile(r"handle_request|wsgi_app|^handle \(.*gunicorn")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=600)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "profile_login.json")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        parser.error("py-spy is not installed: scripts/run setup installs it")

    base = state_dir("pullprint-profile-")
    (base / "cluster").mkdir(mode=0o755)
    cluster = start_cluster(base)
    try:
        client = Client(cluster)
        users = {u["name"]: u for u in cluster.describe()["users"]}
        printers = [p["id"] for p in cluster.printers[:2]]
        documents = base / "doc.ps"
        documents.write_bytes(b"%!PS\n" + b"% page\n" * 2000)
        for _ in range(3):
            client.submit("carol", documents)

        def login(i: int) -> float:
            t0 = time.perf_counter()
            reply = client.login(printers[i % 2], users["carol"]["badge"])
            took = time.perf_counter() - t0
            if reply.status_code != 201:
                raise RuntimeError(f"login answered {reply.status_code}: {reply.text[:200]}")
            client.logout(reply.json()["session"])
            return took

        for i in range(50):  # warm: connections open, caches filled
            login(i)
        # Idle CPU (heartbeats, health checks, the SNMP poller), to take out of the per-login figure.
        idle0, t_idle = cpu_by_role(), time.perf_counter()
        time.sleep(5)
        idle1, idle_s = cpu_by_role(), time.perf_counter() - t_idle

        # The logins alone, unprofiled: CPU per login and latency.
        before, t0 = cpu_by_role(), time.perf_counter()
        took = [login(i) for i in range(args.logins)]
        after, elapsed = cpu_by_role(), time.perf_counter() - t0
        per_login = {}
        for who in sorted(set(after) | set(before)):
            idle_rate = (idle1.get(who, 0) - idle0.get(who, 0)) / idle_s
            spent = after.get(who, 0) - before.get(who, 0) - idle_rate * elapsed
            per_login[who] = round(max(spent, 0) * 1000 / args.logins, 2)

        # The same logins again under py-spy.
        folder = base / "profiles"
        folder.mkdir()
        spies, raw_files = [], collections.defaultdict(list)
        for pid, who in python_servers():
            out = folder / f"{who}-{pid}.txt"
            raw_files[who].append(out)
            spies.append(subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", str(args.rate),
                                           "--gil", "--format", "raw", "--output", str(out)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        for i in range(args.logins):
            login(i)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)
        result = {
            "machine": machine(), "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "what": "badge logins and logouts through HAProxy, one at a time; a LocalCluster of 3 collectors, "
                    "the analyst on SQLite, Redis, TLS between all; 3 held jobs listed at each login",
            "logins": args.logins, "latency_s": percentiles(took),
            "server_cpu_ms_per_login_by_process": per_login,
            "server_cpu_ms_per_login": round(sum(per_login.values()), 2),
            "profile": summarise({k: [p for p in v if p.exists()] for k, v in raw_files.items()})}
    finally:
        cluster.stop()
        if not os.environ.get("PULLPRINT_KEEP_PROFILES"):
            shutil.rmtree(base, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("latency_s", "server_cpu_ms_per_login_by_process",
                                             "server_cpu_ms_per_login")}, indent=1))
    for who, part in result["profile"].items():
        print(who, json.dumps(part["by_category_pct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
