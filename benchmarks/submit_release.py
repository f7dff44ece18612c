"""Submit / release / login benchmark: pullprint side by side with plain CUPS, in one run, on this machine.

    .venv/bin/python benchmarks/submit_release.py            # both scenarios, about 3-5 minutes on 2 cores
    .venv/bin/python benchmarks/submit_release.py --quick    # about 1 minute
    .venv/bin/python benchmarks/submit_release.py --scenario login-one-dead

Scenario ``submit-release`` (pullprint against the reference):

- reference: a private cupsd with a raw queue to a simulated printer's ``socket://`` sink. Jobs are
  submitted held (``lp -H indefinite``) and released one by one with pycups
  (``setJobHoldUntil(id, "no-hold")``, what ``lp -i ID -H resume`` does). Nothing else: no
  replication, no encryption, no authentication, no fsync of the spool.
- pullprint: a LocalCluster (3 collectors behind HAProxy, analyst on SQLite, Redis). Jobs are
  submitted (a) with ``lp`` to the SecurePrint queue, through the real CUPS backend, timed until the
  cluster holds every one of them, and (b) with direct POSTs through HAProxy exactly as the backend
  sends them, from several concurrent submitters. Then a badge login and one release request per
  job, timed from the request until the last byte is in the printer's sink.

Release latency is measured, for both systems, from the moment the release is asked for until the
simulated printer has received the last byte of the job (the sink's own ``received_at`` stamp).

Scenario ``login-one-dead``: badge logins through HAProxy from several threads while one of three
collectors is SIGKILLed at a random moment (and stays dead). An error or a timeout counts as a
failure and enters the percentiles as the timeout value.

Results go to ``benchmarks/results/submit_release.json`` (one entry per scenario; running one
scenario keeps the other's last entry).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localcluster.cluster import LocalCluster  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "submit_release.json"
LOGIN_BUDGET = 2.0  # seconds: the design's bounded-login budget; a slower answer is a failure


# -- small helpers ---------------------------------------------------------------------------------

def percentiles(values: list[float]) -> dict[str, float | int]:
    """p50/p95/p99/max/mean in milliseconds (nearest-rank), and the count."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[index]

    return {"count": len(ordered), "p50_ms": round(rank(50) * 1000, 2), "p95_ms": round(rank(95) * 1000, 2),
            "p99_ms": round(rank(99) * 1000, 2), "max_ms": round(ordered[-1] * 1000, 2),
            "mean_ms": round(sum(ordered) / len(ordered) * 1000, 2)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def state_dir(prefix: str) -> Path:
    """A folder the lp user can enter (cupsd's backends run as lp)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def make_documents(folder: Path, count: int, size: int) -> list[tuple[Path, str]]:
    """`count` distinct documents of `size` bytes (a PostScript header, random body); (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    docs = []
    for index in range(count):
        head = b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n"
        tail = b"\nshowpage\n%%EOF\n"
        data = head + os.urandom(size - len(head) - len(tail)) + tail
        path = folder / f"doc-{index:04d}.ps"
        path.write_bytes(data)
        path.chmod(0o644)
        docs.append((path, hashlib.sha256(data).hexdigest()))
    return docs


class Sink:
    """Watches a simulated printer's sink folder: when did the job with this SHA-256 fully arrive?"""

    def __init__(self, sink_dir: str | Path) -> None:
        self.folder = Path(sink_dir)
        self.seen: dict[str, float] = {}
        self.names: set[str] = set()

    def _scan(self) -> None:
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".json") and not entry.name.startswith(".") and entry.name not in self.names:
                prn = self.folder / (entry.name[:-5] + ".prn")
                if not prn.exists():
                    continue  # the sidecar is written first; the job counts once the .prn is in place
                with contextlib.suppress(OSError, ValueError):
                    meta = json.loads(Path(entry.path).read_text())
                    self.seen.setdefault(meta["sha256"], float(meta["received_at"]))
                    self.names.add(entry.name)

    def wait(self, sha: str, timeout: float = 60.0) -> float:
        """The wall-clock time the last byte of `sha` arrived; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            if sha in self.seen:
                return self.seen[sha]
            self._scan()
            if sha in self.seen:
                return self.seen[sha]
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {sha[:12]} did not reach {self.folder}")
            time.sleep(0.002)


def _sink_hashes(sink: Sink) -> list[str]:
    """Every SHA-256 the sink recorded, one per connection (a job printed twice appears twice)."""
    found = []
    for sidecar in sink.folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads(sidecar.read_text())["sha256"])
    return found


def run_pool(count: int, workers: int, fn: Any) -> tuple[float, list[Any]]:
    """Run fn(i) for i in range(count) on `workers` threads; (elapsed seconds, results in order)."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(fn, range(count)))
    return time.perf_counter() - start, results


class TreeCpu:
    """CPU seconds (user + system) spent by this process's descendants, benchmark process excluded.

    Summed from /proc: each live descendant's own time plus the time of the children it has reaped
    (cupsd reaps its backends, so their CPU is counted). Read before and after a phase, the
    difference is what the servers spent on it; the load generator (this process, and the `lp`
    clients it reaps) is not in it.
    """

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def _stat(pid: int) -> tuple[int, int] | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
            return int(fields[1]), sum(int(x) for x in fields[11:15])
        return None

    @classmethod
    def descendants(cls) -> dict[int, int]:
        """This process's live descendants: pid -> CPU ticks (its own and its reaped children's)."""
        me = os.getpid()
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                info = cls._stat(int(entry))
                if info is not None:
                    parents[int(entry)], ticks[int(entry)] = info
        found = {}
        for pid, tick in ticks.items():
            ancestor, hops = parents.get(pid), 0
            while ancestor and ancestor != me and hops < 64:
                ancestor, hops = parents.get(ancestor), hops + 1
            if ancestor == me:
                found[pid] = tick
        return found

    @classmethod
    def seconds(cls) -> float:
        return sum(cls.descendants().values()) / cls.TICK

    @classmethod
    def measure(cls, fn: Any) -> tuple[Any, float]:
        before = cls.seconds()
        result = fn()
        return result, cls.seconds() - before


# -- reference: plain CUPS ---------------------------------------------------------------------------

def reference_run(base: Path, docs: list[tuple[Path, str]], submitters: int, *,
                  sync_on_close: bool = False) -> dict[str, Any]:
    """Plain CUPS holding `docs` and releasing them one by one; `sync_on_close`: configured
    crash-safe (SyncOnClose Yes: cupsd fsyncs what it spools)."""
    import cups

    from printer_sim.cluster import start_sim
    from pullprint.cupsd import PrivateCupsd

    name = "ref-sync" if sync_on_close else "ref"
    sim = start_sim(1, base / f"{name}-printers", snmp=False)
    cupsd = None
    try:
        cupsd = PrivateCupsd.start(base / f"{name}-cupsd", log_level="warn", sync_on_close=sync_on_close)
        printer = sim.printers[0]
        subprocess.run(["lpadmin", "-h", cupsd.server, "-p", "Ref", "-E", "-v", printer["uri"], "-m", "raw"],
                       check=True, capture_output=True, env=cupsd.env())
        env = cupsd.env()

        def submit(i: int) -> int:
            out = subprocess.run(["lp", "-H", "indefinite", "-d", "Ref", "-U", "alice", "-t", docs[i][0].name,
                                  str(docs[i][0])], check=True, capture_output=True, text=True, env=env).stdout
            match = re.search(r"request id is Ref-(\d+)", out)
            if not match:
                raise RuntimeError(f"lp said {out!r}")
            return int(match.group(1))

        (elapsed, job_ids), cpu = TreeCpu.measure(lambda: run_pool(len(docs), submitters, submit))
        conn = cups.Connection(host=cupsd.host, port=cupsd.port)
        held = [j for j, attrs in conn.getJobs(which_jobs="not-completed", requested_attributes=[
            "job-id", "job-state"]).items() if attrs.get("job-state") == cups.IPP_JOB_HELD]
        if len(held) != len(docs):
            raise RuntimeError(f"the reference holds {len(held)} of {len(docs)} jobs")

        sink = Sink(printer["sink_dir"])
        latencies = []
        for job_id, (_, sha) in zip(job_ids, docs, strict=True):
            asked = time.time()
            conn.setJobHoldUntil(job_id, "no-hold")
            latencies.append(sink.wait(sha) - asked)
        return {
            "what": "private cupsd, raw queue -> socket:// sink; lp -H indefinite; pycups setJobHoldUntil no-hold"
                    + ("; SyncOnClose Yes" if sync_on_close else ""),
            "submit": {"jobs": len(docs), "submitters": submitters, "seconds": round(elapsed, 3),
                       "jobs_per_s": round(len(docs) / elapsed, 2),
                       "server_cpu_ms_per_job": round(cpu * 1000 / len(docs), 2),
                       "until": "every lp has returned (cupsd holds the job)"},
            "release": {"jobs": len(latencies), "latency": percentiles(latencies)},
        }
    finally:
        if cupsd is not None:
            cupsd.stop()
        sim.stop()


# -- pullprint ---------------------------------------------------------------------------------------

class Client:
    """Talks to a LocalCluster the way the backend and a terminal do."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.lb = cluster.lb_url
        self.submit_token = cluster.secret("submit_token")
        self.tls = {"verify": cluster.ca_file, "cert": cluster.admin_cert}
        self.local = threading.local()

    def new_session(self) -> requests.Session:
        """A session that trusts the cluster CA and presents the operator's certificate. Not from the
        environment: requests lets REQUESTS_CA_BUNDLE override a session's own `verify`."""
        session = requests.Session()
        session.trust_env = False
        session.verify, session.cert = self.tls["verify"] or True, self.tls["cert"]
        return session

    def session(self) -> requests.Session:
        if not hasattr(self.local, "s"):
            self.local.s = self.new_session()
        return self.local.s  # type: ignore[no-any-return]

    def submit(self, owner: str, path: Path) -> str:
        headers = {"Authorization": f"Bearer {self.submit_token}", "X-Pullprint-Owner": owner,
                   "X-Pullprint-Title": path.name, "X-Pullprint-Copies": "1",
                   "Content-Type": "application/postscript", "X-Pullprint-Origin-Host": "bench",
                   "Idempotency-Key": f"urn:uuid:{uuid.uuid4()}", "User-Agent": "pullprint-cups-backend/1"}
        with open(path, "rb") as fh:
            answer = self.session().post(f"{self.lb}/api/v1/jobs", data=fh, headers=headers, timeout=60)
        if answer.status_code != 201:
            raise RuntimeError(f"submit answered {answer.status_code}: {answer.text[:200]}")
        return str(answer.json()["id"])

    def held(self, owner: str) -> list[dict[str, Any]]:
        answer = self.session().get(f"{self.cluster.analyst_url}/api/v1/jobs",
                                    params={"state": "held", "owner": owner, "limit": 10000},
                                    timeout=10)
        answer.raise_for_status()
        return answer.json()["jobs"]  # type: ignore[no-any-return]

    def login(self, printer: str, badge: str, timeout: float = 10.0) -> requests.Response:
        return self.session().post(f"{self.lb}/api/v1/sessions", json={"printer": printer, "badge": badge},
                                   timeout=timeout)

    def logout(self, token: str) -> None:
        with contextlib.suppress(requests.RequestException):
            self.session().delete(f"{self.lb}/api/v1/sessions/{token}", timeout=10)

    def release(self, token: str, body: dict[str, Any]) -> requests.Response:
        return self.session().post(f"{self.lb}/api/v1/sessions/{token}/release", json=body,
                                   headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=120)


def start_cluster(base: Path, n_collectors: int = 3) -> LocalCluster:
    return LocalCluster(base / "cluster", n_collectors=n_collectors, n_printers=2).start()


def prepare_lp_queue(cluster: LocalCluster, base: Path, lp_parallel: int | None,
                     backend_ref: str | None) -> dict[str, Any]:
    """SecurePrint as the benchmark wants it: `lp_parallel` members (LocalCluster installs 4), and the
    backend program of `backend_ref` (git archive) instead of this tree's. Returns what was set up."""
    from benchmarks.backend_start import export_ref, install_variant
    from cups_backend import cli as queue_cli

    assert cluster.cupsd is not None
    width = 4
    if lp_parallel and lp_parallel != width:
        address = cluster.lb_url.split("://", 1)[1]
        tls = ["--ca-file", cluster.ca_file] if cluster.tls else []
        code = queue_cli.main(["install", "--name", "SecurePrint",
                               "--uri", f"{'pullprints' if cluster.tls else 'pullprint'}://{address}/", *tls,
                               "--cups-server", cluster.cupsd.server, "--backend-dir", str(cluster.cupsd.backend_dir),
                               "--server-root", str(cluster.cupsd.server_root),
                               "--token-file", str(cluster.secrets["submit_token"]),
                               "--parallel", str(lp_parallel), "--skip-crash-probe"])
        if code != 0:
            raise RuntimeError(f"could not widen SecurePrint to {lp_parallel} queues (exit {code})")
        width = max(width, lp_parallel)  # installing again adds members, never removes them
    backend = "this tree"
    if backend_ref:
        install_variant(export_ref(backend_ref, base / "backend-ref"), cluster.cupsd.backend_dir)
        backend = f"git archive {backend_ref}"
    script = cluster.cupsd.backend_dir / "pullprints"
    return {"class_width": width, "backend": backend, "backend_shebang": script.read_text().splitlines()[0]}


def pullprint_run(base: Path, docs: list[tuple[Path, str]], lp_docs: int, submitters: int,
                  logins: int, lp_parallel: int | None = None, backend_ref: str | None = None) -> dict[str, Any]:
    (base / "cluster").mkdir(mode=0o755)
    cluster = start_cluster(base)
    try:
        client = Client(cluster)
        users = {u["name"]: u for u in cluster.describe()["users"]}
        p1, p2 = cluster.printers[0], cluster.printers[1]
        result: dict[str, Any] = {"what": "LocalCluster: 3 collectors (gunicorn) behind HAProxy, analyst on "
                                          "SQLite, Redis; replicas=2, encrypted + fsynced spool"}
        queue = prepare_lp_queue(cluster, base, lp_parallel, backend_ref)

        # (a) lp to the SecurePrint queue, through cupsd and the real backend (owner alice).
        env = cluster.cupsd.env()
        subset = docs[:lp_docs]

        def lp(i: int) -> None:
            subprocess.run(["lp", "-d", "SecurePrint", "-U", "alice", "-t", subset[i][0].name, str(subset[i][0])],
                           check=True, capture_output=True, env=env)

        # What the servers burn with no job at all, the benchmark polling the analyst as it does below
        # until every job is listed (health checks, the SNMP poller, heartbeats, the polling): counted in
        # the lp figure, which lasts longer per job than the HTTP one, so it is measured and given beside it.
        idle_before, idle_start = TreeCpu.seconds(), time.perf_counter()
        while time.perf_counter() - idle_start < 2.0:
            client.held("alice")
            time.sleep(0.05)
        idle_cpu_per_s = (TreeCpu.seconds() - idle_before) / (time.perf_counter() - idle_start)

        cpu_before = TreeCpu.seconds()
        start = time.perf_counter()
        lp_elapsed, _ = run_pool(len(subset), submitters, lp)
        deadline = time.monotonic() + 600
        while len(client.held("alice")) < len(subset):
            if time.monotonic() > deadline:
                raise RuntimeError("the lp jobs did not all reach the cluster")
            time.sleep(0.05)
        total = time.perf_counter() - start
        lp_cpu = TreeCpu.seconds() - cpu_before
        result["submit_lp"] = {
            "jobs": len(subset), "submitters": submitters, "lp_returned_s": round(lp_elapsed, 3),
            "seconds": round(total, 3), "jobs_per_s": round(len(subset) / total, 2),
            "server_cpu_ms_per_job": round(lp_cpu * 1000 / len(subset), 2),
            "idle_cpu_ms_per_s": round(idle_cpu_per_s * 1000, 1),
            "server_cpu_ms_per_job_less_idle": round((lp_cpu - idle_cpu_per_s * total) * 1000 / len(subset), 2),
            **queue,
            "until": "the analyst lists every job held (each one acknowledged by a collector: spooled, "
                     "replicated, registered)"}

        # (b) direct POSTs through HAProxy, as the backend sends them (owner bob), several submitters.
        (elapsed, ids), http_cpu = TreeCpu.measure(
            lambda: run_pool(len(docs), submitters, lambda i: client.submit("bob", docs[i][0])))
        result["submit_http"] = {"jobs": len(docs), "submitters": submitters, "seconds": round(elapsed, 3),
                                 "jobs_per_s": round(len(docs) / elapsed, 2),
                                 "server_cpu_ms_per_job": round(http_cpu * 1000 / len(docs), 2),
                                 "until": "every POST /api/v1/jobs through HAProxy has answered 201"}

        # Release bob's jobs one at a time at p1: request -> last byte in the sink.
        sink = Sink(p1["sink_dir"])
        answer = client.login(p1["id"], users["bob"]["badge"])
        token = answer.json()["session"]
        latencies, request_times, statuses = [], [], {}
        for job_id, (_, sha) in zip(ids, docs, strict=True):
            asked = time.time()
            t0 = time.perf_counter()
            reply = client.release(token, {"jobs": [job_id]})
            request_times.append(time.perf_counter() - t0)
            if reply.status_code in (401, 404):  # the session went idle: log in again, ask again
                token = client.login(p1["id"], users["bob"]["badge"]).json()["session"]
                asked = time.time()
                reply = client.release(token, {"jobs": [job_id]})
            status = reply.json()["results"][0]["status"] if reply.ok else f"http-{reply.status_code}"
            statuses[status] = statuses.get(status, 0) + 1
            if status in ("printed", "queued"):  # queued: the collector prints it in the background
                latencies.append(sink.wait(sha) - asked)
        client.logout(token)
        result["release"] = {"jobs": len(ids), "statuses": statuses, "latency": percentiles(latencies),
                             "request_answered": percentiles(request_times)}

        # Release all of alice's lp jobs at p2 in one request: how long until the last one is out.
        sink2 = Sink(p2["sink_dir"])
        answer = client.login(p2["id"], users["alice"]["badge"])
        token = answer.json()["session"]
        asked = time.time()
        reply = client.release(token, {"all": True})
        done = [sink2.wait(sha) for _, sha in subset]
        counts: dict[str, int] = {}
        for item in reply.json().get("results", []):
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        client.logout(token)
        result["release_all"] = {"jobs": len(subset), "statuses": counts,
                                 "seconds_until_last_byte": round(max(done) - asked, 3),
                                 "jobs_per_s": round(len(subset) / (max(done) - asked), 2)}
        time.sleep(1.0)  # anything printed twice would show up by now
        # Per printer: the lp batch (p2) and the HTTP batch (p1) share documents, so each printer on its own.
        result["duplicate_prints"] = sum(len(h) - len(set(h)) for h in (_sink_hashes(sink), _sink_hashes(sink2)))

        # Badge logins (carol with a few held jobs, a realistic list), sequential, then 4 and 8 at a time.
        for _ in range(3):
            client.submit("carol", docs[0][0])

        def one_login(i: int) -> float:
            printer = (p1, p2)[i % 2]["id"]
            t0 = time.perf_counter()
            reply = client.login(printer, users["carol"]["badge"])
            took = time.perf_counter() - t0
            if reply.status_code != 201:
                raise RuntimeError(f"login answered {reply.status_code}: {reply.text[:200]}")
            client.logout(reply.json()["session"])
            return took

        _, sequential = run_pool(logins, 1, one_login)
        _, four = run_pool(logins, 4, one_login)
        _, eight = run_pool(logins, 8, one_login)
        result["login"] = {"jobs_listed": 3, "sequential": percentiles(sequential),
                           "four_terminals_at_once": percentiles(four), "eight_terminals_at_once": percentiles(eight)}
        return result
    finally:
        cluster.stop()


def scenario_submit_release(args: argparse.Namespace) -> dict[str, Any]:
    base = state_dir("pullprint-bench-")
    try:
        docs = make_documents(base / "docs", args.jobs, args.size)
        print(f"reference: plain CUPS, {args.jobs} x {args.size} B", flush=True)
        reference = reference_run(base, docs, args.submitters)
        print(f"  {json.dumps(reference['submit'])}\n  {json.dumps(reference['release'])}", flush=True)
        print("reference: plain CUPS crash-safe (SyncOnClose Yes)", flush=True)
        crash_safe = reference_run(base, docs, args.submitters, sync_on_close=True)
        print(f"  {json.dumps(crash_safe['submit'])}", flush=True)
        print("pullprint: LocalCluster", flush=True)
        pull = pullprint_run(base, docs, args.lp_jobs, args.submitters, args.logins, args.lp_parallel,
                             args.backend_ref)
        for key in ("submit_lp", "submit_http", "release", "release_all", "login"):
            print(f"  {key}: {json.dumps(pull[key])}", flush=True)
        ref_release = reference["release"]["latency"]
        pp_release = pull["release"]["latency"]
        ratios = {
            "submit_lp_throughput": ratio(pull["submit_lp"]["jobs_per_s"], reference["submit"]["jobs_per_s"]),
            "submit_http_throughput": ratio(pull["submit_http"]["jobs_per_s"], reference["submit"]["jobs_per_s"]),
            "submit_http_throughput_vs_crash_safe": ratio(pull["submit_http"]["jobs_per_s"],
                                                          crash_safe["submit"]["jobs_per_s"]),
            "submit_lp_throughput_vs_crash_safe": ratio(pull["submit_lp"]["jobs_per_s"],
                                                        crash_safe["submit"]["jobs_per_s"]),
            **{f"release_latency_{p}": ratio(pp_release.get(f"{p}_ms"), ref_release.get(f"{p}_ms"))
               for p in ("p50", "p95", "p99")},
            "note": "pullprint / reference: above 1 is faster for throughput, slower for latency",
        }
        return {"jobs": args.jobs, "size_bytes": args.size, "submitters": args.submitters,
                "reference": reference, "reference_crash_safe": crash_safe, "pullprint": pull, "ratios": ratios}
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- login with one of three collectors killed --------------------------------------------------------

def scenario_login_one_dead(args: argparse.Namespace) -> dict[str, Any]:
    base = state_dir("pullprint-bench-dead-")
    rng = random.Random(args.seed)
    (base / "cluster").mkdir(mode=0o755)
    cluster = start_cluster(base)
    try:
        client = Client(cluster)
        users = cluster.describe()["users"]
        docs = make_documents(base / "docs", 1, 20_000)
        for user in users:  # each user has a few held jobs, so each login lists something
            for _ in range(3):
                client.submit(user["name"], docs[0][0])
        printers = [p["id"] for p in cluster.printers]
        victim = rng.choice(sorted(cluster.collectors))
        kill_after = rng.randint(int(args.dead_logins * 0.25), int(args.dead_logins * 0.5))
        records: list[tuple[float, float, float, str]] = []  # (started, ended, seconds counted, outcome)
        errors: dict[str, str] = {}
        lock = threading.Lock()
        counter = iter(range(args.dead_logins))
        killed = threading.Event()
        kill_at: list[float] = []
        # Open loop: login i is due at t0 + i / rate, whatever happened to the others, and its latency
        # counts from when it was due (a late start is waiting time a user would see, too).
        interval = 1.0 / args.rate if args.rate > 0 else 0.0
        t0 = time.perf_counter() + 0.2

        def worker() -> None:
            session = client.new_session()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                due = t0 + i * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                started = due if interval else time.perf_counter()
                user = users[i % len(users)]
                try:
                    reply = session.post(f"{cluster.lb_url}/api/v1/sessions", timeout=LOGIN_BUDGET,
                                         json={"printer": printers[i % len(printers)], "badge": user["badge"]})
                    outcome = "ok" if reply.status_code == 201 else f"http-{reply.status_code}"
                    if outcome != "ok":
                        errors.setdefault(outcome, reply.text[:300])
                except requests.Timeout:
                    outcome = "timeout"
                except requests.RequestException as exc:
                    outcome = f"error-{type(exc).__name__}"
                    errors.setdefault(outcome, str(exc)[:300])
                    session = client.new_session()
                ended = time.perf_counter()
                took = ended - started
                if outcome == "ok" and took > LOGIN_BUDGET:
                    outcome = "over-budget"
                counted = took if outcome == "ok" else max(took, LOGIN_BUDGET)
                with lock:
                    records.append((started, ended, counted, outcome))
                    if len(records) == kill_after and not killed.is_set():
                        killed.set()

        def killer() -> None:
            killed.wait()
            kill_at.append(time.perf_counter())
            cluster.kill_collector(victim)

        print(f"login-one-dead: {args.dead_logins} logins, {args.threads} threads, "
              f"{args.rate or 'as many as possible'}/s, kill {victim} after {kill_after}", flush=True)
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        t_start = t0
        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        duration = time.perf_counter() - t_start
        killed.set()
        kill_thread.join(10)
        t_kill = kill_at[0]
        # A login belongs to the phase in which it ended: one in flight when the node died was hit by it.
        phases = {"before_kill": lambda e: e < t_kill, "first_5s_after_kill": lambda e: t_kill <= e < t_kill + 5,
                  "after": lambda e: e >= t_kill + 5}
        result: dict[str, Any] = {
            "collectors": 3, "killed": victim, "threads": args.threads, "logins": len(records),
            "offered_rate_per_s": args.rate or "closed loop (as fast as the threads go)",
            "budget_s": LOGIN_BUDGET, "seconds": round(duration, 2),
            "logins_per_s": round(len(records) / duration, 1),
            "kill_at_s": round(t_kill - t_start, 2), "seed": args.seed,
            "failures_counted_as": f"{LOGIN_BUDGET} s in the percentiles"}
        for name, test in phases.items():
            selected = [r for r in records if test(r[1])]
            failures: dict[str, int] = {}
            for *_, outcome in selected:
                if outcome != "ok":
                    failures[outcome] = failures.get(outcome, 0) + 1
            result[name] = {**percentiles([r[2] for r in selected]), "failures": failures,
                            "http_5xx": sum(v for k, v in failures.items() if k.startswith("http-5"))}
        result["all"] = {**percentiles([r[2] for r in records]), "failures": sum(1 for r in records if r[3] != "ok")}
        result["error_examples"] = errors
        result["target"] = {"p99_ms_under": 250, "http_5xx": 0,
                            "met": all(result[p].get("p99_ms", 0) < 250 and result[p]["http_5xx"] == 0
                                       for p in phases if result[p]["count"])}
        return result
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- main --------------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    def version(argv: list[str]) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        return "?"

    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    commit = os.environ.get("PULLPRINT_SOURCE_COMMIT") or version(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    return {"nproc": os.cpu_count(), "cpu": cpu, "source_commit": commit, "python": platform.python_version(),
            "platform": platform.platform(), "cupsd": version(["dpkg-query", "-W", "-f", "${Version}", "cups"]),
            "haproxy": version(["haproxy", "-v"]), "redis": version(["redis-server", "--version"])}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("all", "submit-release", "login-one-dead"), default="all")
    parser.add_argument("--quick", action="store_true", help="a smaller run, about a minute")
    parser.add_argument("--jobs", type=int, help="jobs per system (default 200, quick 60)")
    parser.add_argument("--lp-jobs", type=int, help="of those, submitted with lp to SecurePrint (default 50, quick 20)")
    parser.add_argument("--size", type=int, default=100_000, help="bytes per job (default 100000)")
    parser.add_argument("--submitters", type=int, default=4, help="concurrent submitters (default 4)")
    parser.add_argument("--logins", type=int, help="badge logins per login measurement (default 300, quick 100)")
    parser.add_argument("--dead-logins", type=int, help="logins in login-one-dead (default 2000, quick 600)")
    parser.add_argument("--threads", type=int, default=8, help="login threads in login-one-dead (default 8)")
    parser.add_argument("--rate", type=float, default=25.0,
                        help="logins offered per second in login-one-dead, open loop (default 25; 0: closed loop)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the kill moment and victim")
    parser.add_argument("--lp-parallel", type=int, metavar="N",
                        help="SecurePrint as a class of N queues for the lp submit (LocalCluster installs 4)")
    parser.add_argument("--backend-ref", metavar="REV",
                        help="run the lp submit with the CUPS backend of this commit (git archive), not this tree's")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (60 if args.quick else 200)
    args.lp_jobs = min(args.jobs, args.lp_jobs or (20 if args.quick else 50))
    args.logins = args.logins or (100 if args.quick else 300)
    args.dead_logins = args.dead_logins or (600 if args.quick else 2000)
    args.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    return args


def write_results(path: Path, entries: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        existing = json.loads(path.read_text())
    scenarios = existing.get("scenarios", {}) if isinstance(existing, dict) else {}
    scenarios.update(entries)
    path.write_text(json.dumps({"scenarios": scenarios}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = [Path(sys.executable).name, *(sys.argv if argv is None else ["benchmarks/submit_release.py", *argv])]
    common = {"command": " ".join(command),
              "machine": machine(), "quick": args.quick, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    entries: dict[str, Any] = {}
    for name, run in (("submit-release", scenario_submit_release), ("login-one-dead", scenario_login_one_dead)):
        if args.scenario in ("all", name):
            started, load_before = time.perf_counter(), os.getloadavg()
            entries[name] = {**common, **run(args), "wall_seconds": 0.0}
            entries[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
            # Other work on the machine skews both sides; the load average says how busy it was.
            entries[name]["loadavg_1_5_15"] = {"before": [round(x, 2) for x in load_before],
                                               "after": [round(x, 2) for x in os.getloadavg()]}
            print(f"{name}: {entries[name]['wall_seconds']} s", flush=True)
            write_results(args.out, entries)
    if "login-one-dead" in entries:
        dead = entries["login-one-dead"]
        for phase in ("before_kill", "first_5s_after_kill", "after"):
            print(f"  {phase}: {json.dumps(dead[phase])}", flush=True)
    if "submit-release" in entries:
        print(f"  ratios: {json.dumps(entries['submit-release']['ratios'])}", flush=True)
    print(f"results: {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
