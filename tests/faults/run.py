"""Run the fault suite against a fresh local cluster and write the results as JSON.

    .venv/bin/python -m tests.faults.run --kills 200 --jobs 20000 --out benchmarks/results/faults_long.json

Starts a LocalCluster (3 collectors, 4 printers by default, no cupsd: the workload speaks the
backend's HTTP itself; 2 submitters and 8 badge terminals) whose collectors reach the analyst and
Redis through fault-injecting TCP proxies, runs the workload and the injector until both the job
count and the kill count are reached (or --max-minutes passes), restores everything, lets the
cluster settle, drains every user's held jobs, and checks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from localcluster.cluster import LocalCluster
from pullprint import daemons
from tests.faults.checker import check
from tests.faults.injector import Injector, Links
from tests.faults.workload import Ledger, Target, Workload

# Short leases so that interrupted releases come back within a test's time (defaults: 120 s + 30 s).
CLUSTER_ENV = {
    "PULLPRINT_COLLECTOR_LEASE_SECONDS": "20",
    "PULLPRINT_ANALYST_LEASE_GRACE_SECONDS": "5",
    "PULLPRINT_COLLECTOR_MAX_JOB_BYTES": str(8 * 1024 * 1024),
}


def state_dir() -> Path:
    """A folder the lp user can enter (cupsd's backends run as lp), as in tests/e2e/conftest.py."""
    path = Path(tempfile.mkdtemp(prefix="pullprint-faults-"))
    path.chmod(0o755)
    return path


class ProxyLinks:
    """Starts one proxy process per link the cluster asks for; LocalCluster.collector_link calls it."""

    def __init__(self, folder: Path, names: tuple[str, ...] = ("analyst", "redis")) -> None:
        self.folder, self.names = folder, names
        self.links = Links()
        self.daemons: list[daemons.Daemon] = []

    def __call__(self, name: str, url: str) -> str:
        if name not in self.names:
            return url
        scheme, rest = url.split("://", 1)
        hostport, _, tail = rest.partition("/")
        listen, control = daemons.free_port(), daemons.free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        daemon = daemons.start(f"proxy {name}", [sys.executable, "-m", "tests.faults.proxy", "--listen", str(listen),
                                                 "--target", hostport, "--control", str(control)],
                               log_path=self.folder / f"proxy-{name}.log",
                               ready=lambda: daemons.port_open("127.0.0.1", control), timeout=20)
        self.daemons.append(daemon)
        self.links.control[name] = control
        return f"{scheme}://127.0.0.1:{listen}" + (f"/{tail}" if tail else "")

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()


def run(*, kills: int, jobs: int, out: Path | None = None, submitters: int = 4, terminals: int = 4,
        max_minutes: float = 240.0, keep_state: bool = False, seed: int | None = None,
        other_every: int = 4, collectors: int = 3, printers: int = 2, pause: float = 0.05,
        other_kinds: tuple[str, ...] | None = None, log=print) -> dict[str, Any]:  # noqa: ANN001
    folder = state_dir()
    links = ProxyLinks(folder / "proxies")
    cluster = LocalCluster(folder, n_collectors=collectors, n_printers=printers, with_cupsd=False,
                           extra_env=dict(CLUSTER_ENV), collector_link=links)
    started = time.time()
    report: dict[str, Any] = {}
    try:
        cluster.start()
        log(f"cluster up in {time.time() - started:.1f} s at {folder}")
        target = Target.from_cluster_json(folder / "cluster.json")
        ledger = Ledger(folder / "ledger.jsonl")
        workload = Workload(target, ledger, jobs=jobs, submitters=submitters, terminals=terminals, pause=pause,
                            seed=seed)
        injector = Injector(cluster, workload, links.links, kills=kills, other_every=other_every, seed=seed,
                            **({"other_kinds": other_kinds} if other_kinds else {}))
        workload.keep_going = lambda: injector.kills < kills and not injector.stop_event.is_set()
        deadline = time.monotonic() + max_minutes * 60
        workload.start()
        time.sleep(2)  # some jobs held before the first fault
        fault_start = time.time()
        injector.start(deadline)
        last_note = 0.0
        while time.monotonic() < deadline:
            if not injector.thread or not injector.thread.is_alive():
                break
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                log(f"t={time.time() - started:.0f}s kills={injector.kills} faults={len(injector.faults)} "
                    f"started={workload.stats.started} acked={workload.stats.acked} "
                    f"releases={workload.stats.releases} logins={len(workload.stats.logins)}")
            time.sleep(1)
        injector.stop_event.set()
        injector.join(120)
        fault_end = time.time()
        workload.stop_submitting.set()
        injector.restore()
        log(f"faults over after {fault_end - fault_start:.0f} s: {injector.summary()}")
        workload.stop(timeout=300)
        ledger_path = ledger.path
        report = check(cluster, ledger_path, workload, fault_window=(fault_start, fault_end))
        ledger.close()
        report = {
            "command": " ".join(sys.argv) if sys.argv else "",
            "parameters": {"kills": kills, "jobs": jobs, "submitters": submitters, "terminals": terminals,
                           "collectors": collectors, "printers": printers, "seed": seed, "pause": pause,
                           "env": CLUSTER_ENV},
            "faults": injector.summary(),
            "fault_seconds": round(fault_end - fault_start, 1),
            "total_seconds": round(time.time() - started, 1),
            "workload": {"jobs_started": workload.stats.started, "acked": workload.stats.acked,
                         "submit_retries": workload.stats.submit_retries, "releases": workload.stats.releases},
            **report,
            "fault_log": injector.faults,
            "state_dir": str(folder),
        }
    finally:
        cluster.stop()
        links.stop()
        if out is not None and report:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2, default=str))
        if not keep_state and report and report.get("lost") == report.get("duplicated") == report.get("phantom") == 0:
            shutil.rmtree(folder, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200, help="collector kills, at least (default 200)")
    parser.add_argument("--jobs", type=int, default=20000, help="jobs submitted, at least (default 20000)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/faults_long.json"))
    parser.add_argument("--submitters", type=int, default=2)
    parser.add_argument("--terminals", type=int, default=8)
    parser.add_argument("--printers", type=int, default=4)
    parser.add_argument("--max-minutes", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-state", action="store_true", help="keep the state folder (logs, ledger, sinks)")
    args = parser.parse_args(argv)
    report = run(kills=args.kills, jobs=args.jobs, out=args.out, submitters=args.submitters,
                 terminals=args.terminals, printers=args.printers, max_minutes=args.max_minutes,
                 keep_state=args.keep_state, seed=args.seed,
                 log=lambda line: print(line, flush=True))
    summary = {k: report.get(k) for k in ("jobs_acknowledged", "printed", "lost", "duplicated", "phantom",
                                         "double_acknowledged", "interrupted_user_decides", "stuck_held",
                                         "terminal_5xx", "login_during_faults", "faults", "total_seconds")}
    print(json.dumps(summary, indent=2))
    ok = report.get("lost") == report.get("duplicated") == report.get("phantom") == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
