"""Throughput and latency against concurrency, pullprint beside plain CUPS: `submit_release.py`'s
submit-release scenario run once per number of submitters, collected in one JSON.

    .venv/bin/python benchmarks/concurrency.py                       # 1, 2, 4, 8, 16 submitters
    .venv/bin/python benchmarks/concurrency.py --submitters 1 4 --jobs 40 --lp-jobs 8 --out /tmp/c.json
    .venv/bin/python benchmarks/plot_concurrency.py                  # the chart, from the JSON

Each level is a whole run of its own (a fresh cupsd and a fresh cluster, side by side, under the
same load); the chart's script reads only the JSON this writes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "concurrency.json"


def run_level(submitters: int, jobs: int, lp_jobs: int, size: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "submit_release.py"), "--scenario", "submit-release",
                        "--quick", "--jobs", str(jobs), "--lp-jobs", str(lp_jobs), "--size", str(size),
                        "--submitters", str(submitters), "--out", str(out)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        scenario = json.loads(out.read_text())["scenarios"]["submit-release"]
    reference, crash_safe, ours = scenario["reference"], scenario["reference_crash_safe"], scenario["pullprint"]
    return {
        "submitters": submitters, "jobs": jobs, "lp_jobs": lp_jobs, "size_bytes": size,
        "loadavg_1_5_15": scenario["loadavg_1_5_15"],
        "cups": {"jobs_per_s": reference["submit"]["jobs_per_s"],
                 "server_cpu_ms_per_job": reference["submit"]["server_cpu_ms_per_job"]},
        "cups_crash_safe": {"jobs_per_s": crash_safe["submit"]["jobs_per_s"],
                            "server_cpu_ms_per_job": crash_safe["submit"]["server_cpu_ms_per_job"]},
        "pullprint_http": {"jobs_per_s": ours["submit_http"]["jobs_per_s"],
                           "server_cpu_ms_per_job": ours["submit_http"]["server_cpu_ms_per_job"]},
        "pullprint_lp": {"jobs_per_s": ours["submit_lp"]["jobs_per_s"],
                         "server_cpu_ms_per_job": ours["submit_lp"]["server_cpu_ms_per_job"]},
        "ratios": {"http": scenario["ratios"]["submit_http_throughput"],
                   "lp": scenario["ratios"]["submit_lp_throughput"],
                   "http_vs_crash_safe": scenario["ratios"]["submit_http_throughput_vs_crash_safe"]},
        "release_latency_ms": {"cups": reference["release"]["latency"], "pullprint": ours["release"]["latency"]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submitters", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--jobs", type=int, default=160, help="jobs per system and level (default 160)")
    parser.add_argument("--lp-jobs", type=int, default=20, help="of those, through lp (default 20)")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    levels = []
    for n in args.submitters:
        levels.append(run_level(n, args.jobs, args.lp_jobs, args.size))
        print(json.dumps(levels[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "started_at": started, "nproc": os.cpu_count(),
        "note": "mean time a job spends in submission, by Little's law: submitters / throughput",
        "levels": levels}, indent=1) + "\n")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
