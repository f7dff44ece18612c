"""Benchmark: 40 jobs released to 10 printers at once — pullprint beside plain CUPS, in the same run.

Each simulated printer takes a fixed time per job (printer i: BASE + STEP*i seconds), so the slowest
printer alone needs 4 × its per-job time: that is the floor any dispatcher can reach. pullprint:
10 users each hold 4 jobs; 10 terminals badge in at once, one per printer, and release everything.
Reference: a private cupsd with one raw socket:// queue per printer, 40 jobs submitted held
(`lp -H indefinite`) and released at once. Both are timed until the last byte is in a printer's sink.

    .venv/bin/python benchmarks/release_fanout.py [--out benchmarks/results/release_fanout.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcluster.cluster import LocalCluster  # noqa: E402
from printer_sim.cluster import start_sim  # noqa: E402
from pullprint.cupsd import PrivateCupsd  # noqa: E402

PRINTERS = 10
JOBS_PER_PRINTER = 4
BASE, STEP = 0.5, 0.1
JOB_BYTES = 50_000


def _sink_count(printers: list[dict]) -> int:
    return sum(len(list(Path(p["sink_dir"]).glob("*.json"))) for p in printers)


def _wait_for_sinks(printers: list[dict], total: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _sink_count(printers) >= total:
            return time.monotonic()
        time.sleep(0.02)
    raise TimeoutError(f"only {_sink_count(printers)} of {total} jobs arrived within {timeout} s")


def _slow_down(control, printers: list[dict]) -> None:
    for index, printer in enumerate(printers):
        control.sink(printer["id"], delay_seconds=BASE + STEP * index)


def run_pullprint(state: Path) -> dict:
    with LocalCluster(state, n_collectors=3, n_printers=PRINTERS, with_cupsd=False) as cluster:
        tls = {"verify": cluster.ca_file, "cert": cluster.admin_cert}
        submit_auth = {"Authorization": f"Bearer {cluster.secret('submit_token')}"}
        users = [{"name": f"bench{i}", "badge": f"99000{i:05d}", "pin": "902817"} for i in range(PRINTERS)]
        for u in users:
            requests.post(f"{cluster.analyst_url}/api/v1/users", json=u, timeout=10, **tls).raise_for_status()
        for u in users:
            for n in range(JOBS_PER_PRINTER):
                answer = requests.post(f"{cluster.lb_url}/api/v1/jobs", data=os.urandom(JOB_BYTES), timeout=30,
                                       headers={**submit_auth, "X-Pullprint-Owner": u["name"],
                                                "X-Pullprint-Title": f"job{n}"}, **tls)
                answer.raise_for_status()
        _slow_down(cluster.sim.control, cluster.printers)
        time.sleep(1.0)  # let the SNMP health cache settle

        def terminal(index: int) -> list[str]:
            printer = cluster.printers[index]
            session = requests.post(f"{cluster.lb_url}/api/v1/sessions", timeout=10, **tls,
                                    json={"printer": printer["id"], "badge": users[index]["badge"]}).json()
            answer = requests.post(f"{cluster.lb_url}/api/v1/sessions/{session['session']}/release",
                                   json={"all": True}, timeout=120, **tls,
                                   headers={"Idempotency-Key": f"bench-{index}"}).json()
            return [r["status"] for r in answer["results"]]

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(PRINTERS) as pool:
            statuses = [s for batch in pool.map(terminal, range(PRINTERS)) for s in batch]
        finished = _wait_for_sinks(cluster.printers, PRINTERS * JOBS_PER_PRINTER, 120)
        return {"seconds": round(finished - started, 3), "statuses": sorted(set(statuses)),
                "jobs": len(statuses)}


def run_cups(state: Path) -> dict:
    with start_sim(PRINTERS, state / "printers", snmp=False) as sim:
        cupsd = PrivateCupsd.start(state / "cupsd")
        try:
            env = cupsd.env()
            for printer in sim.printers:
                subprocess.run(["lpadmin", "-p", f"ref-{printer['id']}", "-E", "-v", printer["uri"], "-m", "raw"],
                               env=env, check=True, capture_output=True)
            document = state / "doc.bin"
            job_ids = []
            for printer in sim.printers:
                for _ in range(JOBS_PER_PRINTER):
                    document.write_bytes(os.urandom(JOB_BYTES))
                    out = subprocess.run(["lp", "-d", f"ref-{printer['id']}", "-H", "indefinite", str(document)],
                                         env=env, check=True, capture_output=True, text=True).stdout
                    job_ids.append(out.split()[3])  # "request id is ref-p1-7 (1 file(s))"
            _slow_down(sim.control, sim.printers)
            started = time.monotonic()
            for job in job_ids:
                subprocess.run(["lp", "-i", job, "-H", "resume"], env=env, check=True, capture_output=True)
            finished = _wait_for_sinks(sim.printers, PRINTERS * JOBS_PER_PRINTER, 120)
            return {"seconds": round(finished - started, 3), "jobs": len(job_ids)}
        finally:
            cupsd.stop()


def main() -> int:
    global PRINTERS, JOBS_PER_PRINTER  # a tiny form (--printers 2 --jobs-per-printer 1) for CI
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=PRINTERS, help=f"printers (default {PRINTERS})")
    parser.add_argument("--jobs-per-printer", type=int, default=JOBS_PER_PRINTER,
                        help=f"jobs released to each (default {JOBS_PER_PRINTER})")
    parser.add_argument("--out", default="benchmarks/results/release_fanout.json")
    args = parser.parse_args()
    PRINTERS, JOBS_PER_PRINTER = args.printers, args.jobs_per_printer
    root = Path(tempfile.mkdtemp(prefix="pullprint-bench-"))
    root.chmod(0o755)
    try:
        reference = run_cups(root / "cups")
        pullprint = run_pullprint(root / "pullprint")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    floor = JOBS_PER_PRINTER * (BASE + STEP * (PRINTERS - 1))
    result = {
        "benchmark": f"release {PRINTERS * JOBS_PER_PRINTER} jobs to {PRINTERS} printers at once",
        "printers": PRINTERS, "jobs_per_printer": JOBS_PER_PRINTER, "job_bytes": JOB_BYTES,
        "per_job_seconds": [round(BASE + STEP * i, 2) for i in range(PRINTERS)],
        "slowest_printer_floor_seconds": round(floor, 3),
        "pullprint": pullprint, "plain_cups": reference,
        "pullprint_over_floor": round(pullprint["seconds"] / floor, 3),
        "pullprint_over_plain_cups": round(pullprint["seconds"] / reference["seconds"], 3),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(sys.argv),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
