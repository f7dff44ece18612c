"""Release: claim a job at the analyst, check the printer, then print it here or have its holder print it.

Exactly once: only the collector holding the analyst's claim (compare-and-set, with a fencing
token) may send a job, and the answer to an ambiguous failure (the holder died after it may have
sent bytes) is never an automatic second send: the claim's lease lapses and the user decides.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from collector.analyst_client import AnalystUnavailable
from collector.http import NodeUnreachable
from collector.intake import discard_copies
from collector.node import Node
from collector.printer_lock import PrinterLock
from pullprint.errors import PullprintError

log = logging.getLogger(__name__)

MESSAGES = {
    "printed": "Sent to the printer.",
    "not-found": "The job no longer exists.",
    "not-owner": "This job belongs to someone else.",
    "not-releasable": "The job is already being printed or has been printed.",
    "unavailable": "No collector holding this job can be reached right now; try again shortly.",
    "interrupted": "The release was interrupted; check the printer before releasing again.",
    "printer-unreachable": "The printer could not be reached; the job is still held.",
    "printer-busy": "The printer is busy with other jobs; the job is still held.",
    "print-failed": "The printer reported a failure.",
    "analyst-unreachable": "The release could not be recorded; the job is still held.",
    "corrupt-spool": "The stored job failed its integrity check and cannot be printed.",
}


@dataclass
class ReleaseResult:
    id: str
    status: str  # "printed", or the reason it was not
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _result(job_id: str, status: str, message: str = "", warnings: list[str] | None = None) -> ReleaseResult:
    return ReleaseResult(job_id, status, message or MESSAGES.get(status, status), list(warnings or []))


def _finish(node: Node, job_id: str, token: int, state: str, **fields: Any) -> None:
    try:
        node.analyst.finish(job_id, token=token, state=state, collector=node.id, **fields)
    except AnalystUnavailable:
        node.journal.append("finish", {"id": job_id, "token": token, "state": state, "collector": node.id,
                                       **fields})


def print_here(node: Node, job_id: str, printer: dict[str, Any], token: int,
               locations: list[str] | None = None) -> ReleaseResult:
    """Send a job this collector holds to `printer` under claim `token`, and record the outcome.

    `locations` are the job's copies as the analyst knows them; all of them go once it printed.
    """
    from collector.output.base import OutputJob, output_for, scheme_of

    meta = node.spool.meta(job_id)
    try:
        node.spool.verify(job_id)  # never send half a document: authenticate all of it first
    except Exception as exc:  # noqa: BLE001 - any failure to read it back means it cannot print
        log.error("job %s failed verification: %s", job_id, exc)
        _finish(node, job_id, token, "failed", reason="corrupt-spool", printer=printer["id"])
        return _result(job_id, "corrupt-spool")
    job = OutputJob(
        title=meta.get("title", "untitled"),
        user=meta["owner"],
        copies=int(meta.get("copies", 1)),
        options=dict(meta.get("options", {})),
        content_type=meta.get("content_type", "application/octet-stream"),
        size=int(meta.get("size", 0)),
        open_stream=lambda: node.spool.plaintext(job_id),
    )
    lock = PrinterLock(node.redis, printer["id"], node.id)
    try:
        lock.acquire(node.config.printer_lock_wait_seconds)
    except PullprintError as exc:
        _finish(node, job_id, token, "held", reason=exc.code, printer=printer["id"])
        return _result(job_id, exc.code)
    try:
        needs_cupsd = scheme_of(printer["uri"]) != "socket"
        output = output_for(printer["uri"], cups_server=node.cups_server() if needs_cupsd else None)
        outcome = output.send(job, printer["uri"], timeout=node.config.output_timeout)
    finally:
        lock.release()
    if outcome.outcome in ("delivered", "completed"):
        _finish(node, job_id, token, "printed", printer=printer["id"], pages=meta.get("pages"),
                copies=job.copies)
        discard_copies(node, job_id, set(locations or []) | set(meta.get("locations", [])))
        log.info("job %s printed on %s (%s)", job_id, printer["id"], outcome.outcome)
        return _result(job_id, "printed")
    if outcome.outcome == "not-sent":
        _finish(node, job_id, token, "held", reason="printer-unreachable", printer=printer["id"])
        return _result(job_id, "printer-unreachable", f"The printer could not be reached ({outcome.detail}).")
    # Some bytes may have reached the printer: no automatic resend; the user sees why.
    _finish(node, job_id, token, "failed", reason="print-failed", printer=printer["id"])
    return _result(job_id, "print-failed", f"The printer reported a failure: {outcome.detail}")


def _pull_here(node: Node, job_id: str, holder: dict[str, Any]) -> None:
    """Fetch a job's sealed file from `holder` into this node's spool, verified."""
    meta, chunks = node.peers.fetch(holder["url"], job_id)

    class _Reader:
        def __init__(self) -> None:
            self._it, self._buf = iter(chunks), b""

        def read(self, n: int = -1) -> bytes:
            while n < 0 or len(self._buf) < n:
                try:
                    self._buf += next(self._it)
                except StopIteration:
                    break
            out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
            return out

    node.spool.store_replica(job_id, _Reader(), {**meta, "locations": [*meta.get("locations", []), node.id]})
    try:
        node.analyst.add_location(job_id, node.id)
    except AnalystUnavailable:
        node.journal.append("location", {"id": job_id, "collector": node.id})


def release_one(node: Node, job_id: str, user: str, printer: dict[str, Any], warnings: list[str]) -> ReleaseResult:
    try:
        job, token = node.analyst.claim(job_id, collector=node.id, printer=printer["id"], user=user,
                                        lease_seconds=node.config.lease_seconds)
    except AnalystUnavailable:
        return _result(job_id, "analyst-unreachable")
    except PullprintError as exc:
        code = {404: "not-found", 403: "not-owner", 409: "not-releasable"}.get(exc.status, exc.code)
        return _result(job_id, code)
    locations = list(job.get("locations", []))
    if node.spool.has(job_id):
        result = print_here(node, job_id, printer, token, locations)
        result.warnings = warnings
        return result
    members = node.live_peers()
    holders = [members[loc] for loc in locations if loc in members]
    if not holders:
        _finish(node, job_id, token, "held", reason="unavailable", printer=printer["id"])
        return _result(job_id, "unavailable")
    for holder in holders:
        try:
            if node.config.release_mode == "pull":
                _pull_here(node, job_id, holder)
                result = print_here(node, job_id, printer, token, [*locations, node.id])
            else:
                body = {"printer": printer, "token": token, "user": user, "locations": locations}
                answer = node.peers.print_direct(holder["url"], job_id, body,
                                                 timeout=node.config.printer_lock_wait_seconds
                                                 + node.config.output_timeout * 2)
                result = ReleaseResult(job_id, answer["status"], answer.get("message", ""))
        except NodeUnreachable as exc:
            if exc.maybe_acted and node.config.release_mode != "pull":
                log.warning("direct print of %s on %s interrupted: %s", job_id, holder["id"], exc.message)
                return _result(job_id, "interrupted")
            continue  # never reached that holder (or only read from it): the next one may serve
        except PullprintError as exc:
            log.warning("release of %s via %s failed: %s", job_id, holder["id"], exc.message)
            continue
        result.warnings = warnings
        return result
    _finish(node, job_id, token, "held", reason="unavailable", printer=printer["id"])
    return _result(job_id, "unavailable")
