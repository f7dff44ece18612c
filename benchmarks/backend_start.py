"""What one run of the CUPS backend costs: start-up alone, and one job to a real cluster.

    .venv/bin/python benchmarks/backend_start.py                       # this tree, 40 runs of each
    .venv/bin/python benchmarks/backend_start.py --baseline-ref c7eb831  # and an older commit beside it

cupsd runs the backend (`/usr/lib/cups/backend/pullprints`) as a fresh process for every job, so
its start is paid per job. This installs the backend the way `pullprint queue install` does (the
same script, shebang and bytecode) from this tree and, with ``--baseline-ref``, from that commit's
``cups_backend/`` and ``pullprint/`` (``git archive``, into a temporary folder), and runs each one as
the lp user with the environment cupsd gives it:

- ``start``: no arguments (discovery): the interpreter, the script and the entry module's imports;
- ``job``: the raw-queue form (7 arguments, a 100 KB file) against a LocalCluster (3 collectors
  behind HAProxy, TLS with the cluster CA), exit code 0 required: the whole cost of one job in the
  backend, the TLS handshake and the wait for the collector's 201 included.

Variants alternate run by run, so background load falls on both alike. CPU is the child's own user +
system time (``getrusage(RUSAGE_CHILDREN)`` around each run, microseconds); wall is from the fork to
the exit. ``imports`` is from ``-X importtime`` runs of the job form: how many modules, their summed
self time (the least of 9 runs). Results go to ``benchmarks/results/backend_start.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.submit_release import machine, make_documents, state_dir  # noqa: E402
from localcluster.cluster import LocalCluster  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "backend_start.json"


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"runs": len(ordered), "p50": round(statistics.median(ordered), 2),
            "mean": round(statistics.fmean(ordered), 2), "min": round(ordered[0], 2),
            "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 2)}


def install_variant(code_root: Path, backend_dir: Path) -> Path:
    """The backend script as `code_root`'s own install_backend writes it; the `pullprints` path."""
    backend_dir.mkdir(parents=True, exist_ok=True)
    backend_dir.chmod(0o755)
    program = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
               "from cups_backend.install import install_backend; install_backend(Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", program, str(code_root), str(backend_dir)], check=True,
                   capture_output=True, cwd="/")
    return backend_dir / "pullprints"


def export_ref(ref: str, folder: Path) -> Path:
    """`ref`'s cups_backend/ and pullprint/ in `folder` (readable by lp)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "cups_backend", "pullprint"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    # Bytecode as a root-run import leaves it (lp cannot write it): the same footing as this tree's.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True, capture_output=True)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def timed_run(argv: list[str], env: dict[str, str], as_lp: bool) -> tuple[int, float, float, str]:
    """(exit code, wall ms, CPU ms of the child, stderr)."""
    extra: dict[str, Any] = {"user": "lp", "group": "lp", "extra_groups": []} if as_lp else {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd="/", **extra)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
    return done.returncode, wall, cpu, done.stderr


def import_profile(script: Path, args: list[str], env: dict[str, str], as_lp: bool, runs: int = 9) -> dict[str, Any]:
    """Runs with -X importtime: the modules imported, and their summed self time (the least of `runs`: the
    least disturbed by other work on the machine)."""
    shebang = script.read_text().splitlines()[0][2:].split()
    totals = []
    for _ in range(runs):
        _, _, _, err = timed_run([*shebang, "-X", "importtime", str(script), *args], env, as_lp)
        modules, total = [], 0
        for line in err.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                fields = line.split(":", 1)[1].split("|")
                total += int(fields[0])
                modules.append(fields[2].strip())
        totals.append(total)
    total = min(totals)
    heavy = sorted({"http.client", "email", "dataclasses", "inspect", "typing", "shutil", "tempfile", "pathlib",
                    "threading", "contextlib", "ssl", "json", "re", "cryptography", "cups", "requests"}
                   & set(modules))
    return {"modules": len(modules), "self_ms_total_min": round(total / 1000, 2), "runs": runs, "of_note": heavy}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="runs of each form per variant (default 40)")
    parser.add_argument("--size", type=int, default=100_000, help="bytes of the job (default 100000)")
    parser.add_argument("--baseline-ref", help="also measure the backend of this commit (git archive)")
    parser.add_argument("--as-root", action="store_true", help="run the backend as root, not as lp")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    as_lp = not args.as_root and os.geteuid() == 0
    base = state_dir("pullprint-bench-backend-")
    load_before = os.getloadavg()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        variants = {"this tree": ROOT}
        if args.baseline_ref:
            variants[f"baseline {args.baseline_ref}"] = export_ref(args.baseline_ref, base / "baseline")
        scripts = {name: install_variant(root, base / f"backend-{i}")
                   for i, (name, root) in enumerate(variants.items())}
        [(doc, _)] = make_documents(base / "docs", 1, args.size)
        (base / "cluster").mkdir(mode=0o755)
        spool_tmp = base / "tmp"
        spool_tmp.mkdir(mode=0o1777)
        spool_tmp.chmod(0o1777)
        cluster = LocalCluster(base / "cluster", n_collectors=3, n_printers=1).start()
        try:
            assert cluster.cupsd is not None
            address = cluster.lb_url.split("://", 1)[1]
            scheme = "pullprints" if cluster.tls else "pullprint"
            env = {"DEVICE_URI": f"{scheme}://{address}/", "CUPS_SERVERROOT": str(cluster.cupsd.server_root),
                   "TMPDIR": str(spool_tmp), "HOME": str(spool_tmp), "CONTENT_TYPE": "application/postscript",
                   "PRINTER": "SecurePrint-1", "CLASS": "SecurePrint", "PATH": "/usr/bin:/bin",
                   "LANG": "C.UTF-8", "USER": "root", "CUPS_MAX_MESSAGE": "2047"}
            samples: dict[str, dict[str, dict[str, list[float]]]] = {
                name: {form: {"wall_ms": [], "cpu_ms": []} for form in ("start", "job")} for name in variants}
            for run in range(args.runs):
                for name, script in scripts.items():
                    for form in ("start", "job"):
                        job_args = [str(1000 + run), "alice", doc.name, "1",
                                    f"job-uuid=urn:uuid:{uuid.uuid4()} job-originating-host-name=bench", str(doc)]
                        code, wall, cpu, err = timed_run([str(script), *(job_args if form == "job" else [])],
                                                         env, as_lp)
                        if code != 0:
                            raise RuntimeError(f"{name} {form} exited {code}: {err[-600:]}")
                        samples[name][form]["wall_ms"].append(wall)
                        samples[name][form]["cpu_ms"].append(cpu)
            results: dict[str, Any] = {}
            for name, script in scripts.items():
                probe_args = ["1", "alice", doc.name, "1", f"job-uuid=urn:uuid:{uuid.uuid4()}", str(doc)]
                results[name] = {
                    "shebang": script.read_text().splitlines()[0],
                    **{form: {measure: summary(values) for measure, values in forms.items()}
                       for form, forms in samples[name].items()},
                    "imports": import_profile(script, probe_args, env, as_lp)}
        finally:
            cluster.stop()
        command = [Path(sys.executable).name, "benchmarks/backend_start.py", *(sys.argv[1:] if argv is None else argv)]
        entry = {"command": " ".join(command), "machine": machine(), "started_at": started_at,
                 "runs_as": "lp" if as_lp else "this user", "size_bytes": args.size, "variants": results,
                 "loadavg_1_5_15": {"before": [round(x, 2) for x in load_before],
                                    "after": [round(x, 2) for x in os.getloadavg()]},
                 "note": "start: discovery (no arguments); job: 7-argument raw job to a LocalCluster over TLS; "
                         "ms per run; CPU is the backend process's own user+system time"}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(entry, indent=2) + "\n")
        for name, result in results.items():
            print(f"{name}: {result['shebang']}")
            for form in ("start", "job"):
                print(f"  {form}: cpu {json.dumps(result[form]['cpu_ms'])}\n  {' ' * len(form)}  wall "
                      f"{json.dumps(result[form]['wall_ms'])}")
            print(f"  imports: {json.dumps(result['imports'])}")
        print(f"load: {json.dumps(entry['loadavg_1_5_15'])}\nresults: {args.out}")
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
