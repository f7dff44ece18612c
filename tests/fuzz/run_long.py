"""The long form of the fuzz targets: at least 10^6 inputs in all, with a JSON summary.

    nice -n 19 .venv/bin/python tests/fuzz/run_long.py [--inputs 1000000] [--until 06:55] [--round 10000]

Each round runs every fuzz file (not the OpenAPI ones, which need a cluster: PULLPRINT_FUZZ=long pytest
tests/fuzz/test_collector_openapi.py) in a pytest of its own with PULLPRINT_FUZZ=long and
PULLPRINT_FUZZ_LONG_EXAMPLES=--round, under a fresh hypothesis seed; rounds go on, every file in turn,
until the inputs reach --inputs or the next round would end after --until (UTC). Inputs are counted by
tests/fuzz/conftest.py (every call of a test body, shrinking included) and read back from pytest's
JUnit XML. The summary (inputs, time and rate per target, each failure with its seed) goes to
benchmarks/results/fuzz_long.json. On a machine with idle cores, run one worker per core, each with its
own --output, then `run_long.py --merge a.json b.json` writes the summary of them all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "benchmarks" / "results" / "fuzz_long.json"


def fuzz_files() -> list[Path]:
    return sorted(p for p in HERE.glob("test_*.py") if "openapi" not in p.name)


def run_round(path: Path, examples: int, seed: int, deadline: float | None) -> tuple[dict[str, dict], float]:
    """One pytest of `path` in the long form; per test: inputs, seconds, outcome, failure text."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "junit.xml"
        env = {**os.environ, "PULLPRINT_FUZZ": "long", "PULLPRINT_FUZZ_LONG_EXAMPLES": str(examples)}
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "pytest", str(path.relative_to(ROOT)), "-q", "-p",
                                    "no:cacheprovider", f"--hypothesis-seed={seed}", f"--junitxml={report}",
                                    "-o", "junit_family=xunit2"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=None if deadline is None else max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            # The deadline: pytest stops at the test it is in and still writes the report of the others.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        elapsed = time.monotonic() - started
        tests: dict[str, dict] = {}
        if not report.exists():
            return {str(path.relative_to(ROOT)): {"inputs": 0, "seconds": elapsed, "outcome": "error",
                                                   "failure": "pytest wrote no report"}}, elapsed
        for case in ET.parse(report).iter("testcase"):
            name = f"{case.get('file') or path.relative_to(ROOT)}::{case.get('name')}"
            inputs = sum(int(p.get("value", 0)) for p in case.iter("property") if p.get("name") == "inputs")
            outcome, failure = "passed", None
            for kind in ("failure", "error"):
                node = case.find(kind)
                if node is not None:
                    outcome, failure = kind, (node.get("message") or "")[:2000]
            skipped = case.find("skipped")
            if skipped is not None:
                outcome = "xfailed" if "xfail" in (skipped.get("type") or "") else "skipped"
                failure = (skipped.get("message") or "")[:500]
            tests[name] = {"inputs": inputs, "seconds": float(case.get("time") or 0), "outcome": outcome,
                           "failure": failure}
        return tests, elapsed


def merge(paths: list[Path], output: Path, goal: int) -> int:
    """One summary of runs made side by side (one worker per core, `--output` each): inputs and time add up."""
    runs = [json.loads(p.read_text()) for p in paths]
    targets: dict[str, dict] = {}
    for run in runs:
        for name, t in run["targets"].items():
            into = targets.setdefault(name, {"inputs": 0, "seconds": 0.0, "rounds": 0, "failures": []})
            for key in ("inputs", "seconds", "rounds"):
                into[key] += t[key]
            into["failures"] += t["failures"]
    for t in targets.values():
        t["rate_per_second"] = round(t["inputs"] / t["seconds"], 1) if t["seconds"] else None
        t["seconds"] = round(t["seconds"], 1)
    total = sum(t["inputs"] for t in targets.values())
    # A summary merged before brings its own runs; the time is the span the runs cover (side by side
    # they overlap, one after another they add up).
    parts = [part for run in runs for part in run.get("runs", [run])]
    spans = sorted((datetime.fromisoformat(r["started_at"]).timestamp(), r["seconds"]) for r in parts)
    wall, end = 0.0, float("-inf")
    for start, seconds in spans:
        wall += max(0.0, start + seconds - max(start, end))
        end = max(end, start + seconds)
    summary = {
        **runs[0], "workers": max(len(runs), runs[0].get("workers", 1)),
        "started_at": min(r["started_at"] for r in parts), "seconds": round(wall, 1),
        "total_inputs": total, "goal_inputs": goal, "reached_goal": total >= goal,
        "stopped": "; ".join(sorted({run["stopped"] for run in runs})),
        "inputs_per_second": round(total / wall, 1) if wall else None,
        "rounds": sum(run["rounds"] for run in runs),
        "failures_found": sum(f["outcome"] not in ("xfailed",) for t in targets.values() for f in t["failures"]),
        "known_failures_xfail": sum(f["outcome"] == "xfailed" for t in targets.values() for f in t["failures"]),
        "runs": [{k: run[k] for k in ("started_at", "seconds", "total_inputs", "stopped", "machine")} for run in parts],
        "targets": dict(sorted(targets.items())),
    }
    output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{total} inputs ({len(runs)} workers, {wall:.0f} s); {summary['failures_found']} failures; {output}")
    return 0 if summary["failures_found"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merge", type=Path, nargs="+", help="merge these summaries into --output, run nothing")
    parser.add_argument("--inputs", type=int, default=1_000_000, help="stop once this many inputs ran")
    parser.add_argument("--until", default="", help="UTC HH:MM: start no round that would end after it")
    parser.add_argument("--round", type=int, default=10_000, help="max_examples per target per round")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.output, args.inputs)
    deadline = None
    if args.until:
        hour, minute = map(int, args.until.split(":"))
        deadline = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()

    targets: dict[str, dict] = {}
    file_seconds: dict[Path, float] = {}
    started, total, rounds, stopped = time.time(), 0, 0, "inputs reached"
    files = fuzz_files()
    while total < args.inputs:
        progressed = False
        for path in files:
            if total >= args.inputs:
                break
            estimate = file_seconds.get(path, 30.0)
            if deadline is not None and time.time() + estimate > deadline:
                continue  # (a round already under way is stopped at the deadline all the same)
            seed = random.SystemRandom().randrange(2**32)
            tests, elapsed = run_round(path, args.round, seed, deadline)
            file_seconds[path] = max(elapsed, file_seconds.get(path, 0.0))
            progressed = True
            for name, result in tests.items():
                target = targets.setdefault(name, {"inputs": 0, "seconds": 0.0, "rounds": 0, "failures": []})
                target["inputs"] += result["inputs"]
                target["seconds"] += result["seconds"]
                target["rounds"] += 1
                total += result["inputs"]
                if result["outcome"] in ("failure", "error", "xfailed"):
                    target["failures"].append({"seed": seed, "outcome": result["outcome"],
                                               "message": result["failure"]})
            print(f"{datetime.now(UTC):%H:%M:%S} {path.name}: {sum(t['inputs'] for t in tests.values())} inputs "
                  f"in {elapsed:.0f} s (total {total})", flush=True)
        rounds += 1
        if not progressed:
            stopped = f"deadline {args.until} UTC"
            break
    seconds = time.time() - started
    for target in targets.values():
        target["rate_per_second"] = round(target["inputs"] / target["seconds"], 1) if target["seconds"] else None
        target["seconds"] = round(target["seconds"], 1)
    summary = {
        "what": "pullprint fuzz targets (hypothesis), long form: tests/fuzz/run_long.py",
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "total_inputs": total,
        "goal_inputs": args.inputs,
        "reached_goal": total >= args.inputs,
        "stopped": stopped,
        "inputs_per_second": round(total / seconds, 1) if seconds else None,
        "round_max_examples": args.round,
        "rounds": rounds,
        "failures_found": sum(f["outcome"] != "xfailed" for t in targets.values() for f in t["failures"]),
        "known_failures_xfail": sum(f["outcome"] == "xfailed" for t in targets.values() for f in t["failures"]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_end": os.getloadavg(), "niceness": os.nice(0)},
        "targets": dict(sorted(targets.items())),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{total} inputs in {seconds:.0f} s; {summary['failures_found']} failures; {args.output}")
    return 0 if summary["failures_found"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
