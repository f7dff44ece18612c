"""Benchmark: one SNMP health cycle over 2,000 simulated printers (10 % dead), vs net-snmp's snmpget.

    flock /tmp/pullprint-bench.lock nice -n 0 .venv/bin/python benchmarks/snmp_poll.py [--printers 2000]
        [--dead-fraction 0.1] [--concurrency 512]

Writes benchmarks/results/snmp_poll.json. The simulator runs in its own process (one core); the
poller runs here. Reference: net-snmp `snmpget` run one after another for a sample of printers (the
naive cron-script approach), extrapolated to the fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.health.snmp import DEFAULT_CONCURRENCY, HealthClient, SnmpTarget, poll_many  # noqa: E402
from printer_sim.cluster import start_sim  # noqa: E402

SCALARS = [".1.3.6.1.2.1.1.3.0", ".1.3.6.1.2.1.25.3.2.1.5.1", ".1.3.6.1.2.1.25.3.5.1.1.1",
           ".1.3.6.1.2.1.25.3.5.1.2.1"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def udp_receive_errors() -> int:
    """Datagrams the kernel dropped for a full receive queue, machine-wide (poller and simulator)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def cycle(targets: list[SnmpTarget], concurrency: int, supplies: bool, sim_pid: int) -> dict:
    async def poll() -> tuple[dict, dict]:
        client = HealthClient()  # made on the loop that polls, as HealthPoller does
        try:
            readings = await poll_many(targets, concurrency=concurrency, supplies=supplies, client=client)
            return readings, dict(client.community.dropped)
        finally:
            client.close()

    drops = udp_receive_errors()
    sim_cpu, cpu, started = process_cpu(sim_pid), cpu_seconds(), time.monotonic()
    readings, dropped = asyncio.run(poll())
    seconds = time.monotonic() - started
    poller_cpu, simulator_cpu = cpu_seconds() - cpu, process_cpu(sim_pid) - sim_cpu
    return {"supplies": supplies, "concurrency": concurrency, "cycle_seconds": round(seconds, 2),
            "poller_cpu_seconds": round(poller_cpu, 2),
            "simulator_cpu_seconds": round(simulator_cpu, 2),
            "cpu_seconds_total": round(poller_cpu + simulator_cpu, 2),
            "reachable": sum(h.reachable for h in readings.values()),
            "unreachable": sum(not h.reachable for h in readings.values()),
            "printers_per_second": round(len(targets) / seconds, 1),
            "answers_dropped_by_poller": dropped,
            "udp_receive_queue_drops": udp_receive_errors() - drops}


def snmpget_reference(printers: list[dict], sample: int, dead: set[str], timeout: float, retries: int) -> dict:
    alive = [p for p in printers if p["id"] not in dead]
    dead_list = [p for p in printers if p["id"] in dead]
    n_dead = max(1, round(sample * len(dead_list) / len(printers))) if dead_list else 0
    chosen = alive[: sample - n_dead] + dead_list[:n_dead]
    started = time.monotonic()
    for printer in chosen:
        subprocess.run(["snmpget", "-v2c", "-c", printer["snmp_community"], "-t", str(timeout), "-r", str(retries),
                        "-On", printer["snmp"], *SCALARS], capture_output=True, check=False)
    seconds = time.monotonic() - started
    return {"sample": len(chosen), "sample_dead": n_dead, "sample_seconds": round(seconds, 2),
            "extrapolated_cycle_seconds": round(seconds * len(printers) / len(chosen), 1),
            "what": "snmpget of the 4 status scalars (no tables), sequential, same timeout/retries"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--printers", type=int, default=2000)
    parser.add_argument("--dead-fraction", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "snmp_poll.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="snmp-bench-") as tmp:
        started = time.monotonic()
        sim = start_sim(args.printers, Path(tmp), timeout=120)
        sim_start = time.monotonic() - started
        try:
            every = max(1, round(1 / args.dead_fraction)) if args.dead_fraction > 0 else 0
            dead = {p["id"] for i, p in enumerate(sim.printers) if every and i % every == every - 1}
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda pid: sim.control.snmp(pid, respond=False), sorted(dead)))
            for i, printer in enumerate(sim.printers[:50]):  # some faults, so answers carry alert rows
                if printer["id"] not in dead and i % 5 == 0:
                    sim.control.set_fault(printer["id"], "toner-low")
            found = (SnmpTarget.from_printer({**p, "snmp_timeout": args.timeout, "snmp_retries": args.retries})
                     for p in sim.printers)
            targets = [t for t in found if t is not None]
            time.sleep(1)
            status = cycle(targets, args.concurrency, False, sim.daemon.pid)
            time.sleep(1)
            full = cycle(targets, args.concurrency, True, sim.daemon.pid)
            time.sleep(1)
            reference = snmpget_reference(sim.printers, args.sample, dead, args.timeout, args.retries)
        finally:
            sim.stop()

    result = {
        "benchmark": "snmp_poll",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": len(__import__("os").sched_getaffinity(0)), "python": platform.python_version(),
                    "platform": platform.platform()},
        "printers": args.printers, "dead": len(dead), "timeout": args.timeout, "retries": args.retries,
        "simulator_start_seconds": round(sim_start, 2),
        "status_cycle": status,
        "full_cycle_with_supplies": full,
        "reference_snmpget_sequential": reference,
        "speedup_vs_snmpget": round(reference["extrapolated_cycle_seconds"] / status["cycle_seconds"], 1),
        "target": "full cycle (status, supplies and alerts) in at most 5 s on 2 cores",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
