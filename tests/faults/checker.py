"""The checker: after the faults, settle, release everything still held, then hold the cluster to its ledger.

Ground truth is what the simulated printers received (sink sidecars: sha256 and `complete`; the first
bytes of each delivery name the job's key, see workload.make_payload). The analyst's view and the
collectors' spools explain the cases that are not plainly "printed once".

Per acknowledged job (a CUPS job = one Idempotency-Key):
- printed:     exactly one complete delivery with the acknowledged bytes;
- duplicated:  more than one complete delivery (nobody here ever re-releases a job that reached a
               printer, so every second print is an automatic one);
- interrupted: not printed, or printed once, and its release was cut short (state `failed`,
               `releasing`, reason `interrupted`, or a partial delivery): the user decides;
- lost:        acknowledged, then neither held (releasable) nor printed;
- stuck:       still held with a copy after the drain (not lost, but not releasable either).
And per delivery: phantom = a complete delivery of bytes that were never acknowledged.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import requests

from localcluster.cluster import LocalCluster
from tests.faults.workload import LOGIN_TIMEOUT, Ledger, Workload, key_of

STATES = ("held", "releasing", "printed", "failed", "expired", "deleted")
DRAIN_ROUNDS = 60


def _analyst(cluster: LocalCluster, method: str, path: str, timeout: float = 10.0) -> Any:
    answer = requests.request(method, f"{cluster.analyst_url}/api/v1{path}", timeout=timeout,
                              verify=cluster.ca_file, cert=cluster.admin_cert, json={} if method == "POST" else None)
    answer.raise_for_status()
    return answer.json()


def deliveries(cluster: LocalCluster) -> list[dict[str, Any]]:
    """Every connection each simulated printer received, with the key its first bytes name."""
    found = []
    for printer in cluster.printers:
        for sidecar in sorted(Path(printer["sink_dir"]).glob("*.json")):
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            prn = sidecar.with_suffix(".prn")
            head = b""
            if prn.exists():
                with open(prn, "rb") as fh:
                    head = fh.read(256)
            found.append({**meta, "printer": printer["id"], "file": prn.name, "key": key_of(head)})
    return found


def analyst_jobs(cluster: LocalCluster, owners: list[str]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for owner in owners:
        for state in STATES:
            for job in _analyst(cluster, "GET", f"/jobs?owner={owner}&state={state}&limit=10000")["jobs"]:
                jobs[job["id"]] = job
    return jobs


def spool_copies(cluster: LocalCluster) -> dict[str, list[str]]:
    copies: dict[str, list[str]] = defaultdict(list)
    for collector in cluster.collectors.values():
        for path in (collector.spool_dir / "jobs").glob("*.spool"):
            copies[path.stem].append(collector.id)
    return copies


def settle(cluster: LocalCluster, *, journal_wait: float = 30.0, lease_wait: float = 45.0) -> dict[str, Any]:
    """Let journals drain and lapsed releases come back (POST /maintenance/expire), all bounded."""
    started = time.monotonic()
    journals_empty = False
    deadline = time.monotonic() + journal_wait
    while time.monotonic() < deadline:
        if all(not (c.spool_dir / "journal.jsonl").exists() or not (c.spool_dir / "journal.jsonl").read_text().strip()
               for c in cluster.collectors.values()):
            journals_empty = True
            break
        time.sleep(1)
    releasing_left = -1
    deadline = time.monotonic() + lease_wait
    while time.monotonic() < deadline:
        try:
            _analyst(cluster, "POST", "/maintenance/expire")
            releasing_left = len(_analyst(cluster, "GET", "/jobs?state=releasing&limit=10000")["jobs"])
        except requests.RequestException:
            releasing_left = -1
        if releasing_left == 0:
            break
        time.sleep(2)
    time.sleep(6)  # one repair round (5 s) after the last restart
    return {"journals_empty": journals_empty, "releasing_left": releasing_left,
            "seconds": round(time.monotonic() - started, 1)}


def drain(cluster: LocalCluster, workload: Workload, id_to_key: dict[str, str]) -> dict[str, Any]:
    """Every user releases what is still held until nothing is; interrupted jobs only if nothing printed.

    That is the "user decides" step, decided the way a careful person would: look at the printer
    (here: the sinks) and release an interrupted job again only when none of it came out.
    """
    printers = [p["id"] for p in cluster.printers]
    re_released: list[str] = []
    rounds = 0
    released = 0
    for user in workload.target.users:
        for rounds_for_user in range(DRAIN_ROUNDS):
            rounds += 1
            seen_keys = {d["key"] for d in deliveries(cluster) if d["key"]}
            printer = printers[rounds_for_user % len(printers)]
            body = workload.login(user, printer)
            if body is None:
                time.sleep(1)
                continue
            wanted, confirmed = [], []
            for job in body.get("jobs", []):
                if not job.get("available"):
                    continue
                plain = job.get("state") == "held" and job.get("state_reason") != "interrupted"
                if plain:
                    wanted.append(job["id"])
                elif id_to_key.get(job["id"]) not in seen_keys:
                    confirmed.append(job["id"])  # nothing of it came out: the user confirms a new release
                    re_released.append(job["id"])
            if not wanted and not confirmed:
                break
            for ids, confirm in ((wanted, False), (confirmed, True)):
                for start in range(0, len(ids), 20):
                    workload.release(user, printer, body["session"], ids[start:start + 20], origin="drain",
                                     confirm_interrupted=confirm)
                    released += len(ids[start:start + 20])
    return {"rounds": rounds, "released": released, "re_released_interrupted": len(re_released)}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(ordered[-1], 4)}


def login_report(logins: list[tuple[float, float, int]], window: tuple[float, float] | None,
                 budget: float = 2.0) -> dict[str, Any]:
    chosen = [entry for entry in logins if window is None or window[0] <= entry[0] <= window[1]]
    latencies = [latency for _, latency, _ in chosen]
    statuses = Counter(str(status) for _, _, status in chosen)
    return {"count": len(chosen), **percentiles(latencies),
            "errors": sum(1 for _, _, s in chosen if s != 201), "errors_5xx": sum(1 for _, _, s in chosen if s >= 500),
            "timeouts_or_connection_errors": sum(1 for _, _, s in chosen if s == 0),
            "over_budget": sum(1 for _, latency, _ in chosen if latency > budget), "statuses": dict(statuses),
            "note": f"errors and timeouts count at the {LOGIN_TIMEOUT:.0f} s client timeout"}


def log_findings(cluster: LocalCluster) -> dict[str, Any]:
    found: dict[str, Any] = {}
    paths = [cluster.state_dir / "analyst.log"] + [cluster.state_dir / c / "collector.log" for c in cluster.collectors]
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        found[str(path.relative_to(cluster.state_dir))] = {
            "tracebacks": text.count("Traceback"), "errors": len(re.findall(r"\bERROR\b", text)),
            "interrupted": text.count("interrupted")}
    return found


def check(cluster: LocalCluster, ledger_path: Path, workload: Workload, *, fault_window: tuple[float, float] | None,
          do_settle: bool = True, do_drain: bool = True) -> dict[str, Any]:
    records = Ledger.read(ledger_path)
    acks = [r for r in records if r["kind"] == "ack"]
    ids_by_key: dict[str, set[str]] = defaultdict(set)
    sha_by_key: dict[str, str] = {}
    size_by_key: dict[str, int] = {}
    for ack in acks:
        ids_by_key[ack["key"]].add(ack["id"])
        sha_by_key[ack["key"]] = ack["sha256"]
        size_by_key[ack["key"]] = int(ack.get("size", 0))
    id_to_key = {ack["id"]: ack["key"] for ack in acks}
    attempted = {r["key"] for r in records if r["kind"] in ("gave-up", "rejected")}

    settled = settle(cluster) if do_settle else {}
    drained = drain(cluster, workload, id_to_key) if do_drain else {}
    records = Ledger.read(ledger_path)
    release_status: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record["kind"] == "release":
            for result in record["results"]:
                release_status[result["id"]].append(result["status"])

    got = deliveries(cluster)
    jobs = analyst_jobs(cluster, [u["name"] for u in workload.target.users])
    copies = spool_copies(cluster)

    complete_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    partial_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    phantoms, corrupt = [], []
    for delivery in got:
        key = delivery["key"]
        if key not in ids_by_key:
            if delivery.get("complete", True):
                phantoms.append({**delivery, "attempted_but_unacked": key in attempted})
            continue
        if not delivery.get("complete", True) or delivery["bytes"] < size_by_key[key]:
            # Cut short: the connection was reset, or closed cleanly by the kernel when the sending
            # collector was killed mid-print (the printer sees an ordinary end of job).
            partial_by_key[key].append(delivery)
        elif delivery["sha256"] == sha_by_key[key]:
            complete_by_key[key].append(delivery)
        else:
            corrupt.append(delivery)

    lost, duplicated, interrupted, stuck, printed_once, double_acked = [], [], [], [], 0, []
    interrupted_printed = 0
    for key, ids in ids_by_key.items():
        prints = complete_by_key.get(key, [])
        states = {i: jobs.get(i, {}).get("state", "unknown") for i in ids}
        reasons = {i: jobs.get(i, {}).get("state_reason", "") for i in ids}
        detail = {"key": key, "ids": sorted(ids), "states": states, "reasons": reasons,
                  "prints": [(d["printer"], d["file"]) for d in prints],
                  "partial": [(d["printer"], d["file"]) for d in partial_by_key.get(key, [])],
                  "copies": {i: copies.get(i, []) for i in ids},
                  "release_results": {i: release_status.get(i, []) for i in ids}}
        if len(ids) > 1:
            double_acked.append(detail)
        was_interrupted = (bool(partial_by_key.get(key))
                           or any(s in ("failed", "releasing") for s in states.values())
                           or any(r == "interrupted" for r in reasons.values())
                           or any("interrupted" in release_status.get(i, []) for i in ids))
        if len(prints) > 1:
            duplicated.append(detail)
        elif len(prints) == 1:
            printed_once += 1
            if was_interrupted and any(s != "printed" for s in states.values()):
                interrupted.append(detail)
                interrupted_printed += 1
        elif was_interrupted and not any(s == "printed" for s in states.values()):
            interrupted.append(detail)
        elif any(s == "held" and copies.get(i) for i, s in states.items()):
            stuck.append(detail)
        else:
            lost.append(detail)

    faults_window = login_report(workload.stats.logins, fault_window)
    return {
        "jobs_acknowledged": len(ids_by_key),
        "acks": len(acks),
        "submits_given_up": sum(1 for r in records if r["kind"] == "gave-up"),
        "submits_rejected": sum(1 for r in records if r["kind"] == "rejected"),
        "printed": printed_once + len(duplicated),
        "printed_once": printed_once,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "phantom": len(phantoms),
        "double_acknowledged": len(double_acked),
        "corrupt_deliveries": len(corrupt),
        "interrupted_user_decides": len(interrupted),
        "interrupted_of_which_printed_once": interrupted_printed,
        "stuck_held": len(stuck),
        "deliveries": len(got),
        "partial_deliveries": sum(len(v) for v in partial_by_key.values()),
        "login_during_faults": faults_window,
        "login_overall": login_report(workload.stats.logins, None),
        "terminal_5xx": workload.stats.terminal_5xx,
        "release_statuses": workload.stats.release_statuses,
        "releases_given_up": sum(1 for r in records if r["kind"] == "release-gave-up"),
        "settle": settled,
        "drain": drained,
        "logs": log_findings(cluster),
        "details": {"lost": lost[:50], "duplicated": duplicated[:50], "phantom": phantoms[:50],
                    "double_acknowledged": double_acked[:50], "interrupted": interrupted[:50],
                    "stuck": stuck[:50], "corrupt": corrupt[:50],
                    "release_gave_up": [r for r in records if r["kind"] == "release-gave-up"][:30],
                    "submit_gave_up": [r for r in records if r["kind"] == "gave-up"][:30]},
    }
