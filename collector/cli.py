"""`pullprint collector`: its own cupsd, the journal replayed, the spool reconciled, then gunicorn and housekeeping."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig
from collector.health.model import PrinterHealth
from collector.health.poller import HealthPoller
from collector.node import Node
from collector.output.local_cupsd import LocalCupsd
from nodeserver.command import gunicorn_command
from pullprint import config as pp_config
from pullprint.errors import PullprintError
from pullprint.log import setup

_FLAGS = ("id", "site", "bind", "public_url", "spool_dir", "analyst_url", "redis_url", "release_mode")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pullprint collector", description="Run one collector node.")
    parser.add_argument("--config", help="JSON config file (section 'collector')")
    for name in _FLAGS:
        parser.add_argument("--" + name.replace("_", "-"))
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--check-config", action="store_true",
                        help="check the settings (file, environment, secret files) and exit: OK, or what is wrong")
    parser.add_argument("--hand-over", action="store_true",
                        help="before retiring this collector (drained, still running): give every job it holds to "
                             "the other collectors, then exit; from then on it takes no new job or copy")
    parser.add_argument("--hand-over-seconds", type=float, default=600.0,
                        help="give up (exit 1, keeping what could not be handed over) after this long")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    if args.config:
        env["PULLPRINT_CONFIG"] = os.path.abspath(args.config)
    for name in (*_FLAGS, "workers", "threads"):
        value = getattr(args, name)
        if value is not None:
            env[f"PULLPRINT_COLLECTOR_{name.upper()}"] = str(value)
    if args.check_config:  # before anything starts
        return pp_config.check_command(CollectorConfig, "collector", environ=env)
    os.environ.update(env)  # the housekeeping in this process and the gunicorn workers read the same settings
    log = setup("collector")
    cfg = pp_config.load(CollectorConfig, "collector")
    if args.hand_over:
        return _hand_over(cfg, args.hand_over_seconds)

    from collector.copies import reconcile
    from collector.housekeeping import Housekeeper
    from collector.membership import withdraw
    from collector.node import build_node
    from collector.replay import replay_journal

    output_cupsd = _start_output_cupsd(cfg)
    if output_cupsd is not None:  # the workers and the housekeeping share the node's one cupsd
        env["PULLPRINT_COLLECTOR_CUPS_SERVER"] = cfg.cups_server = output_cupsd.server
    node = build_node(cfg)
    node.spool.clear_leftovers()
    if sealed := node.spool.seal_legacy_metadata():  # spools written before metadata was encrypted
        log.info("collector %s sealed the metadata of %d older spool files", cfg.id, sealed)
    # A returning node first hands the analyst what it journalled, then drops what was deleted
    # while it was away; only then does it accept requests.
    replay_journal(node, at_start=True)
    try:
        summary = reconcile(node)
        log.info("collector %s reconciled its spool: %s", cfg.id, summary)
    except Exception:  # noqa: BLE001 - never let a bad record keep a node down; housekeeping retries
        log.exception("reconcile at start failed; the housekeeping will try again")

    argv, tls_env = gunicorn_command("collector.app:create_app()", bind=cfg.bind, workers=cfg.workers,
                                     threads=cfg.threads, tls=cfg.tls(),
                                     extra=("--timeout", "300", "--name", f"pullprint-collector-{cfg.id}"))
    gunicorn = subprocess.Popen(argv, env={**env, **tls_env, **_metrics_dir(cfg)})
    housekeeper = Housekeeper(node)
    housekeeper.start()
    poller = _start_poller(node)

    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    reported_cycle: object = None
    while not stopping.is_set() and gunicorn.poll() is None:
        stopping.wait(0.5)
        if output_cupsd is not None and not stopping.is_set():
            output_cupsd.check()
        if poller.last_cycle.get("at") != reported_cycle:
            reported_cycle = poller.last_cycle.get("at")
            _record_poll_cycle(node, poller)
    housekeeper.stop_event.set()
    poller.stop()
    try:
        withdraw(node.redis, cfg.id)
    except Exception:  # noqa: BLE001 - its key expires anyway
        pass
    if gunicorn.poll() is None:
        gunicorn.terminate()
        try:
            gunicorn.wait(15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
    node.close()
    if output_cupsd is not None:
        output_cupsd.stop()
    return 0 if stopping.is_set() else 1


def _hand_over(cfg: CollectorConfig, seconds: float) -> int:
    """`--hand-over`: pass over the spool until every job is with the other collectors (or time is up)."""
    from collector.analyst_client import AnalystUnavailable
    from collector.copies import hand_over
    from collector.node import build_node

    node = build_node(cfg)
    node.spool.mark_retiring()
    print(f"collector {cfg.id} is retiring: it takes no new job or copy, and hands over the "
          f"{len(node.spool.job_ids())} jobs it holds", flush=True)
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                print(json.dumps(hand_over(node)), flush=True)
            except AnalystUnavailable as exc:
                print(f"the analyst is away ({exc.message}): nothing is handed over without it", flush=True)
            left = len(node.spool.job_ids())
            if not left:
                break
            if time.monotonic() > deadline:
                print(f"{left} jobs are still here after {seconds:.0f} s (being printed, not registered yet, or "
                      f"too few other collectors to hold {cfg.replicas} copies): this collector keeps them; "
                      f"run --hand-over again, or add a collector first", flush=True)
                return 1
            time.sleep(2)
    finally:
        node.close()
    # The others learn the new places at their reconcile; until then they count this node as a holder.
    wait = cfg.reconcile_seconds + 5
    print(f"every job is with the other collectors; waiting {wait:.0f} s for their reconcile, then stop this "
          f"collector", flush=True)
    time.sleep(wait)
    print("done: stop and remove this collector now", flush=True)
    return 0


def _metrics_dir(cfg: CollectorConfig) -> dict[str, str]:
    """An empty folder for the workers' Prometheus figures (collector/metrics.py), wiped at each start:
    a count from a previous run must not be added to this one's."""
    folder = Path(cfg.spool_dir) / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(folder)}


def _start_output_cupsd(cfg: CollectorConfig) -> LocalCupsd | None:
    """The node's own cupsd for ipp/ipps/lpd printers, unless `cups_server` names one to use."""
    if cfg.cups_server:
        return None
    output_cupsd = LocalCupsd(Path(cfg.cups_state_dir or Path(cfg.spool_dir) / "cupsd"))
    try:
        output_cupsd.start()
    except Exception as exc:  # noqa: BLE001 - socket:// printers still work; the watch retries
        logging.getLogger(__name__).error("the local cupsd for ipp/lpd output could not start: %s", exc)
    return output_cupsd


def _record_poll_cycle(node: Node, poller: HealthPoller) -> None:
    """The poller's last cycle and its printers' states, for the workers' /metrics (collector/status.py)."""
    from collector.health.policy import judge
    from collector.status import record_poll_cycle

    printers = {str(p.get("id")): p for p in node.directory.printers()}
    states = {pid: judge(health, {**printers.get(pid, {"snmp_host": "-"}), "in_service": True}, now=time.time(),
                         max_age=float("inf")).state
              for pid, health in poller.last_readings.items()}
    record_poll_cycle(node, poller.last_cycle, states)


def _start_poller(node: Node) -> HealthPoller:
    """The site's SNMP fleet poller, shared among the site's collectors; changes go to the analyst."""
    from collector.health.policy import judge

    def report(printer_id: str, health: PrinterHealth) -> None:
        printer = next((p for p in node.directory.printers() if p.get("id") == printer_id), None)
        if printer is None:
            return
        # The printer's own condition (not the operator's out-of-service flag, which the analyst holds).
        verdict = judge(health, {**printer, "in_service": True}, now=time.time(), max_age=float("inf"))
        if verdict.state not in ("ok", "warning", "error", "unreachable"):
            return
        body: dict[str, Any] = {"state": verdict.state, "reason": verdict.reason or "", "warnings": verdict.warnings,
                "errors": verdict.errors, "collector": node.id, "uptime": health.uptime,
                "polled_at": datetime.fromtimestamp(health.polled_at, UTC).isoformat()}
        if health.supplies:  # read every few cycles; the analyst keeps the last ones it was given
            body["supplies"] = [{"description": s.description[:128], "percent": s.percent}
                                for s in health.supplies[:32]]
        try:
            node.analyst.printer_status(printer_id, body)
        except PullprintError as exc:
            logging.getLogger(__name__).info("printer status of %s not reported: %s", printer_id, exc.code)

    poller = HealthPoller(node.id, node.redis, node.directory.printers, site=node.config.site,
                          interval=node.config.poll_interval_seconds, report=report,
                          members=lambda: list(node.membership.live()), seals=node.seals)
    poller.start()
    return poller
