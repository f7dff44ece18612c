"""The collector's scheduler of periodic duties: the heartbeat in a thread of its own, the other duties in another."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector import copies, site_claims, status
from collector.analyst_client import AnalystProbe
from collector.node import Node
from collector.replay import replay_journal
from pullprint import pki
from pullprint.log import new_request_id, request_scope

log = logging.getLogger(__name__)


def refresh_crl(node: Node) -> None:
    """Take the analyst's copy of the CA's revocation list when the CA signed it and it is newer.

    The TLS contexts re-read the file within a second, so a revoked node is refused from then on.
    """
    cfg = node.config
    if cfg.insecure_plain_http or not cfg.crl_file:
        return
    if pki.take_crl(Path(cfg.ca_file), Path(cfg.crl_file), node.analyst.crl()):
        log.info("collector %s took a new revocation list from the analyst", cfg.id)


def heartbeat_report(node: Node) -> dict[str, Any]:
    """What each heartbeat tells the analyst of this node besides its address (the console's fleet view)."""
    from pullprint import __version__

    return {"version": __version__, "spool_jobs": len(node.spool.job_ids()), "journal_entries": len(node.journal)}


class Housekeeper:
    """Runs each duty on its own period until stopped: the heartbeat in a thread of its own (a long
    reconcile or repair must never let this node's membership lapse), the other duties in another.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.stop_event = threading.Event()
        self.absent_since: dict[str, float] = {}
        self.last_scan = copies.LastScan()
        self.census = status.CensusState()
        self.analyst_probe = AnalystProbe(node.analyst, node.redis, node.id, node.config.url, node.config.site,
                                          node.config.heartbeat_seconds, report=lambda: heartbeat_report(node))
        self.claim_keeper = site_claims.ClaimKeeper(node)
        cfg = node.config
        self.duties: list[tuple[str, float, Callable[[], Any]]] = [
            ("journal", 2.0, lambda: replay_journal(node)),
            ("directory", cfg.directory_sync_seconds, node.directory.refresh),
            ("repair", 5.0, lambda: copies.repair_replicas(node, self.absent_since, cfg.repair_grace_seconds,
                                                           self.last_scan)),
            ("reconcile", cfg.reconcile_seconds, lambda: copies.reconcile(node)),
            ("orphans", cfg.reconcile_seconds, lambda: copies.sweep_orphans(node)),
            ("expire", cfg.expire_seconds, lambda: copies.expire_jobs(node)),
            ("census", 5.0, lambda: status.take_census(node, self.census)),
            ("crl", cfg.crl_refresh_seconds, lambda: refresh_crl(node)),
        ]
        self._next = {name: 0.0 for name, _, _ in self.duties}

    def heartbeat(self) -> None:
        """One beat: announce this node in Redis, probe the analyst, keep the site's release claims."""
        cfg = self.node.config
        try:
            self.node.membership.announce(cfg.site)  # alive only: peers take its address from the analyst
            status.record_redis_seen(self.node)  # for /readyz, answered in the worker processes
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot announce membership in redis: %s", exc)
        collectors = self.analyst_probe.beat()
        if collectors is None:
            self.claim_keeper.keep(analyst_reachable=False)
            return
        self.node.membership.remember(collectors)
        self.claim_keeper.keep(analyst_reachable=True)
        if self.analyst_probe.back:
            # The analyst is back: replay the journal now, then drop what it says is gone.
            now = time.monotonic()
            self._next["journal"], self._next["reconcile"], self._next["directory"] = now, now + 1, now

    def run_once(self) -> None:
        now = time.monotonic()
        for name, period, duty in self.duties:
            if now >= self._next[name]:
                self._next[name] = now + period
                # Each run of a duty is one piece of work: its lines and its calls share an id naming it.
                with request_scope(f"{name}-{new_request_id()}"):
                    try:
                        duty()
                    except Exception:  # noqa: BLE001 - one failing duty must not stop the others
                        log.exception("housekeeping duty %s failed", name)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.run_once()
            self.stop_event.wait(0.2)

    def beat(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            with request_scope(f"heartbeat-{new_request_id()}"):
                try:
                    self.heartbeat()
                except Exception:  # noqa: BLE001
                    log.exception("heartbeat failed")
            self.stop_event.wait(max(0.05, self.node.config.heartbeat_seconds - (time.monotonic() - started)))

    def start(self) -> None:
        threading.Thread(target=self.beat, name="heartbeat", daemon=True).start()
        threading.Thread(target=self.run, name="housekeeping", daemon=True).start()
