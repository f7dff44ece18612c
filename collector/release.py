"""Release: check the printer, then claim each job and print it here or have a holder of a copy print it.

Exactly once: only the collector holding the analyst's claim (compare-and-set, with a fencing
token) may send a job, and the answer to an ambiguous failure (the holder died after it may have
sent bytes) is never an automatic second send: the claim's lease lapses and the user decides.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from collector import copies, journal, metrics, site_claims
from collector.analyst_client import AnalystUnavailable
from collector.clock import now_iso
from collector.membership import Member
from collector.messages import MESSAGES
from collector.node import Node
from collector.peers import PeerUnreachable
from collector.printer_lock import PrinterLock
from collector.sessions import Session
from collector.terminal import ReleaseRequest, list_jobs
from pullprint import keys, render
from pullprint.documents import KIND_OF, LANGUAGE_OF, LANGUAGES
from pullprint.errors import BadRequest, Conflict, NotFound, PullprintError
from pullprint.ids import valid_job_id
from pullprint.states import INTERRUPTED, JobState
from pullprint.wire import JobSubmission

log = logging.getLogger(__name__)
_PRINTER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,63}\Z")  # the analyst's identifiers


@dataclass
class ReleaseResult:
    """What became of one job of a release request, as the terminal shows it."""

    id: str
    status: str  # "printed", or the reason it was not
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _result(job_id: str, status: str, message: str = "", warnings: list[str] | None = None) -> ReleaseResult:
    return ReleaseResult(job_id, status, message or MESSAGES.get(status, status), list(warnings or []))


@dataclass
class Claim:
    """The right to send one job: the analyst's fencing token, or a site-wide Redis claim made offline."""

    job_id: str
    user: str
    token: int = 0
    offline_at: str | None = None  # set when claimed while the analyst was unreachable
    lease_until: float = 0.0       # wall-clock end of the analyst's lease (0: unknown)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, job_id: str, data: Any) -> Claim:
        """The claim a direct print request carries (`to_json` on the caller); BadRequest when malformed."""
        try:
            return cls(job_id=job_id, user=str(data["user"]), token=int(data["token"]),
                       offline_at=data.get("offline_at"), lease_until=float(data.get("lease_until") or 0))
        except (KeyError, TypeError, ValueError):
            raise BadRequest("bad-print-request", "the claim is malformed") from None


def release_jobs(node: Node, session: Session, request: ReleaseRequest, idempotency_key: str | None) -> dict[str, Any]:
    """Release the requested jobs (or all) at the session's printer; per job a ReleaseResult.

    A retried request (same `Idempotency-Key`) gets the first one's answer, or 409 while that one
    is still being carried out."""
    if request.jobs is not None and len(request.jobs) > node.config.max_release_jobs:
        raise BadRequest("too-many-jobs", f"a release names at most {node.config.max_release_jobs} jobs "
                         '(release all with {"all": true})', limit=node.config.max_release_jobs)
    idem_key = keys.idempotent_release(session.user, idempotency_key) if idempotency_key else None
    if idem_key:
        try:
            # Sealed answers only (collector/state_mac.py): a planted answer is ignored and overwritten.
            stored = node.redis.get(idem_key)
            previous = node.seals.open(idem_key, stored)
            if not previous:
                # "pending" only while this request waits; after that the answer itself is kept.
                wait = int(node.config.release_wait_seconds) + 10
                node.redis.set(idem_key, node.seals.seal(idem_key, "pending", ttl_seconds=wait), ex=wait,
                               nx=stored is None)
        except Exception:  # noqa: BLE001 - without Redis the analyst's claim alone keeps it to one print
            previous, idem_key = None, None
        if previous == "pending":
            raise Conflict("release-in-progress", "this release request is already being carried out")
        if previous:
            return dict(json.loads(previous))

    def remember(answer: dict[str, Any]) -> None:
        if idem_key:
            with contextlib.suppress(Exception):
                node.redis.set(idem_key, node.seals.seal(idem_key, json.dumps(answer), ttl_seconds=600), ex=600)

    try:
        answer = _release(node, session, request.jobs, remember, request.confirm_interrupted)
    except BaseException:
        if idem_key:
            with contextlib.suppress(Exception):
                node.redis.delete(idem_key)
        raise
    remember(answer)
    return answer


def _release(node: Node, session: Session, wanted: list[str] | None,
             remember: Callable[[dict[str, Any]], None], confirm_interrupted: bool = False) -> dict[str, Any]:
    printer = node.directory.printer(session.printer)
    if wanted is None:
        listing = list_jobs(node, session, everything=True)["jobs"]
        wanted = [j["id"] for j in listing if j.get("available")]
    elif session.only:  # a release code releases its own job, no other of the same guest
        wanted = [job_id for job_id in wanted if job_id == session.only]
    allowed, reason, warnings, message = _check_printer(node, printer)
    if not allowed:
        # The printer cannot take jobs: nothing is claimed, every job stays held.
        refused = [ReleaseResult(job_id, reason or "printer-error", message, warnings) for job_id in wanted]
        return {"printer": printer["id"], "results": [r.to_json() for r in refused],
                "suggestion": suggest_printer(node, printer)}
    results: dict[str, ReleaseResult] = {}
    order = list(wanted)

    def release_in_order() -> None:
        # One job after the other, in the order the user chose: the printer takes them in that order.
        started = time.monotonic()
        with _on_the_way(node, printer["id"], len(order)) as done:
            for job_id in order:
                results[job_id] = release_one(node, job_id, session.user, printer, warnings, confirm_interrupted)
                done()
        log.info("release of %d job(s) by %s at %s took %.2f s", len(order), session.user, printer["id"],
                 time.monotonic() - started)
        remember(answer_for(results))

    def answer_for(done: dict[str, ReleaseResult]) -> dict[str, Any]:
        queued = {j: ReleaseResult(j, "queued", MESSAGES["queued"], warnings) for j in order if j not in done}
        return {"printer": printer["id"], "results": [(done.get(j) or queued[j]).to_json() for j in order]}

    future = node.release_pool.submit(release_in_order)
    try:
        future.result(timeout=node.config.release_wait_seconds)
    except concurrent.futures.TimeoutError:
        pass  # the rest goes out in the background; the terminal sees them as queued
    return answer_for(dict(results))


def mail_printer(node: Node, printer_id: str) -> dict[str, Any]:
    """The printer a mail to its own address prints at, checked before anything is held: it exists and
    its operator opened it to mail (``direct_mail``); otherwise the clear refusal (the mail is refused)."""
    if not _PRINTER_ID.match(printer_id):
        raise BadRequest("bad-printer", "the printer of a mail's address is not a printer id")
    try:
        printer = node.directory.printer(printer_id)
    except PullprintError as exc:
        if exc.status != 404:
            raise
        raise NotFound("unknown-printer", f"there is no printer {printer_id}") from None
    if not printer.get("direct_mail"):
        raise Conflict("not-a-mail-printer", f"printer {printer_id} does not print mail to its own address; "
                       f"send it to the general print address and release it there with your badge")
    return printer


def print_on_arrival(node: Node, job_id: str, user: str, printer: dict[str, Any]) -> dict[str, Any]:
    """Print `user`'s job, just held, at a direct-mail printer: the release a badge there would make.
    The printer's health is checked as for any release; when it cannot take the job, or the release
    fails, the job stays held for a badge release anywhere. Answers what became of it."""
    allowed, reason, warnings, message = _check_printer(node, printer)
    if not allowed:
        return {"printer": printer["id"], "status": reason or "printer-error", "message": message}
    def release() -> ReleaseResult:
        with _on_the_way(node, printer["id"], 1) as done:
            result = release_one(node, job_id, user, printer, warnings)
            done()
            return result

    future = node.release_pool.submit(release)
    try:
        result = future.result(timeout=node.config.release_wait_seconds)
    except concurrent.futures.TimeoutError:  # it goes on in the background, as a terminal's release does
        return {"printer": printer["id"], "status": "queued", "message": MESSAGES["queued"]}
    log.info("job %s released on arrival at %s: %s", job_id, printer["id"], result.status)
    return {"printer": printer["id"], "status": result.status, "message": result.message}


@contextlib.contextmanager
def _on_the_way(node: Node, printer_id: str, jobs: int) -> Iterator[Callable[[], None]]:
    """Count `jobs` in the printer's queue depth (metrics) until each is `done()`, or the block ends."""
    left = [jobs]
    metrics.printer_queue(node.id, printer_id, jobs)

    def done() -> None:
        left[0] -= 1
        metrics.printer_queue(node.id, printer_id, -1)
    try:
        yield done
    finally:
        if left[0]:
            metrics.printer_queue(node.id, printer_id, -left[0])


def _check_printer(node: Node, printer: dict[str, Any]) -> tuple[bool, str | None, list[str], str]:
    """May jobs go to `printer` now (SNMP health, cached in Redis)? (allowed, reason, warnings, message)"""
    from collector.health.cache import check_printer

    verdict = check_printer(node.directory.with_snmp_keys(printer), node.redis, max_age=node.config.health_max_age,
                            timeout=node.config.health_timeout, seals=node.seals)
    message = MESSAGES.get(verdict.reason or "", verdict.reason or "")
    return verdict.allowed, verdict.reason, list(verdict.warnings), message


def suggest_printer(node: Node, refused: dict[str, Any]) -> dict[str, Any] | None:
    """The nearest other printer that can take jobs: same site, same location first, matching tags."""
    from collector.health.cache import check_printer

    candidates = [p for p in node.directory.printers()
                  if p.get("id") != refused.get("id") and p.get("site") == refused.get("site")
                  and set(refused.get("tags", [])) <= set(p.get("tags", [])) and p.get("in_service", True)]
    candidates.sort(key=lambda p: p.get("location") != refused.get("location"))
    for printer in candidates[:5]:
        verdict = check_printer(printer, node.redis, max_age=node.config.health_max_age,
                                timeout=node.config.health_timeout, seals=node.seals)
        if verdict.allowed:
            return {"id": printer["id"], "location": printer.get("location", "")}
    return None


def _finish(node: Node, claim: Claim, state: str, **fields: Any) -> None:
    """Record a release's outcome at the analyst, or journal it for replay when it is away."""
    site_claims.settle(node, claim.job_id, state, offline=bool(claim.offline_at))
    if claim.offline_at:
        if state != JobState.HELD:  # held: nothing changed, the analyst need not hear of it
            node.journal.append(journal.OFFLINE_RELEASE, {"id": claim.job_id, "user": claim.user, "state": state,
                                                          "at": claim.offline_at, "collector": node.id, **fields})
        return
    try:
        node.analyst.finish(claim.job_id, token=claim.token, state=state, collector=node.id, **fields)
    except AnalystUnavailable:
        node.journal.append(journal.FINISH, {"id": claim.job_id, "token": claim.token, "state": state,
                                             "collector": node.id, "offline_at": now_iso(), **fields})


def _why_taken(node: Node, job_id: str) -> str:
    """The site claim is taken: the job is being released, was printed, or its release was
    interrupted (then the user may confirm, and should hear so)."""
    try:
        job = node.analyst.job(job_id)
    except PullprintError:
        return "not-releasable"
    return INTERRUPTED if job.get("state_reason") == INTERRUPTED else "not-releasable"



def print_here(node: Node, claim: Claim, printer: dict[str, Any],
               locations: list[str] | None = None) -> ReleaseResult:
    """Send a job this collector holds to `printer` under `claim`, and record the outcome.

    `locations` are the job's copies as the analyst knows them; all of them go once it printed.
    """
    from collector.output import OutputJob, document_filter, output_for, scheme_of

    job_id = claim.job_id
    record = JobSubmission.from_json(node.spool.meta(job_id))
    if record.owner != claim.user:
        _finish(node, claim, JobState.HELD, reason="not-owner", printer=printer["id"])
        return _result(job_id, "not-owner")
    try:
        node.spool.verify(job_id)  # never send half a document: authenticate all of it first
    except Exception as exc:  # noqa: BLE001 - any failure to read it back means it cannot print
        log.error("job %s failed verification: %s", job_id, exc)
        _finish(node, claim, JobState.FAILED, reason="corrupt-spool", printer=printer["id"])
        return _result(job_id, "corrupt-spool")
    # The printer's document filter (collector/output/document_filter.py): refused before anything
    # is sent; stripped while it is sent, every copy afresh.
    filter_mode = document_filter.strictest(printer, *[p for p in node.directory.printers()
                                                       if p.get("id") == printer["id"]])
    if filter_mode == document_filter.REFUSE:
        command = document_filter.first_refused_command(node.spool.plaintext(job_id))
        if command:
            reason = document_filter.REFUSED_PREFIX + command
            log.warning("job %s refused for printer %s: it holds %s", job_id, printer["id"], command)
            _finish(node, claim, JobState.FAILED, reason=reason, printer=printer["id"])
            return _result(job_id, reason, MESSAGES["document-refused"].format(command=command))
    # A document in a language the printer does not take is converted once, here (pullprint/render.py);
    # one it takes goes as it is, streamed from the spool.
    languages = list(printer.get("languages") or LANGUAGES)
    language = LANGUAGE_OF.get(record.content_type)
    if language is not None and language not in languages:
        try:
            converted, target = render.for_printer(b"".join(node.spool.plaintext(job_id)), language, languages)
        except render.RenderError as exc:
            log.warning("job %s cannot be converted for printer %s: %s", job_id, printer["id"], exc.reason)
            _finish(node, claim, JobState.HELD, reason="cannot-convert", printer=printer["id"])
            return _result(job_id, "cannot-convert", MESSAGES["cannot-convert"].format(detail=exc.reason))
        job = OutputJob(title=record.title, user=record.owner, copies=record.copies, options=dict(record.options),
                        content_type=KIND_OF[target], size=len(converted),
                        open_stream=lambda: document_filter.filtered(iter([converted]), filter_mode))
    else:
        job = OutputJob(title=record.title, user=record.owner, copies=record.copies, options=dict(record.options),
                        content_type=record.content_type, size=record.size,
                        open_stream=lambda: document_filter.filtered(node.spool.plaintext(job_id), filter_mode))
    lock = PrinterLock(node.redis, printer["id"], node.id)
    try:
        lock.acquire(node.config.printer_lock_wait_seconds)
    except PullprintError as exc:
        _finish(node, claim, JobState.HELD, reason=exc.code, printer=printer["id"])
        return _result(job_id, exc.code)
    except Exception as exc:  # noqa: BLE001 - Redis away: the claim still guarantees one print
        log.warning("no cluster-wide lock for printer %s (%s); sending without it", printer["id"],
                    type(exc).__name__)
    refusal = _still_ours(node, claim)
    if refusal:
        lock.release()
        if refusal != "not-releasable":  # nothing was sent; a superseded claim has nothing to record
            _finish(node, claim, JobState.HELD, reason=refusal, printer=printer["id"])
        return _result(job_id, refusal)
    try:
        needs_cupsd = scheme_of(printer["uri"]) != "socket"
        output = output_for(printer["uri"], cups_server=node.cups_server() if needs_cupsd else None)
        outcome = _send_with_retries(node, output, job, printer["uri"], lock)
    finally:
        lock.release()
    if outcome is None:  # fenced out before a byte went out: another holder has the printer
        _finish(node, claim, JobState.HELD, reason="printer-busy", printer=printer["id"])
        return _result(job_id, "printer-busy")
    if outcome.outcome in ("delivered", "completed"):
        # Copies first, then the record: a releaser killed between the two leaves the job releasing
        # (interrupted: the user decides), never printed with a copy left that an offline listing
        # offers again once a Redis restart has forgotten the job's `gone` mark.
        copies.discard_copies(node, job_id, set(locations or []) | set(record.locations))
        _finish(node, claim, JobState.PRINTED, printer=printer["id"], pages=record.pages,
                copies=job.copies)
        log.info("job %s printed on %s (%s)", job_id, printer["id"], outcome.outcome)
        return _result(job_id, JobState.PRINTED)
    if outcome.outcome == "not-sent":
        _finish(node, claim, JobState.HELD, reason="printer-unreachable", printer=printer["id"])
        return _result(job_id, "printer-unreachable", f"The printer could not be reached ({outcome.detail}).")
    # Some bytes may have reached the printer: no automatic resend; the user sees why.
    _finish(node, claim, JobState.FAILED, reason="print-failed", printer=printer["id"])
    return _result(job_id, "print-failed", f"The printer reported a failure: {outcome.detail}")


# A claim with at least this share of its lease left is sent without renewing it first.
FRESH_LEASE = 0.9


def _still_ours(node: Node, claim: Claim) -> str | None:
    """Right before sending: renew the claim's lease at the analyst. Waiting for the printer may
    have outlasted the lease; if a user has confirmed a new release since, this claim is stale and
    the job must not go out twice. None: send; otherwise why not."""
    if claim.offline_at:
        return None  # the site claim in Redis is the claim, kept until replayed
    if claim.lease_until - time.time() >= node.config.lease_seconds * FRESH_LEASE:
        # Taken a moment ago (no wait for the printer): nobody can take the job over before the
        # lease lapses, which a renewal now would push back by almost nothing.
        return None
    try:
        node.analyst.renew(claim.job_id, token=claim.token, lease_seconds=node.config.lease_seconds)
    except AnalystUnavailable:
        # Nobody can take the job over before the lease we hold lapses: send while it runs.
        margin = node.config.output_timeout
        return None if time.time() + margin < claim.lease_until else "analyst-unreachable"
    except PullprintError as exc:
        log.warning("claim %d on %s is no longer current (%s): not sending", claim.token, claim.job_id, exc.code)
        return "not-releasable"
    claim.lease_until = time.time() + node.config.lease_seconds
    return None


def _send_with_retries(node: Node, output: Any, job: Any, uri: str, lock: PrinterLock) -> Any:
    """Send; a printer that took nothing (refused, unreachable) is tried again with backoff, in turn.

    Each try first checks the printer lock's fencing token: None when another holder has the
    printer now (this one was paused past its lease), and nothing was sent."""
    delay = node.config.output_retry_backoff
    for attempt in range(node.config.output_retries + 1):
        if lock.confirm() is False:
            log.warning("lock on printer %s (token %d) was taken over: not sending", uri, lock.token)
            return None
        outcome = output.send(job, uri, timeout=node.config.output_timeout)
        if outcome.outcome != "not-sent" or attempt == node.config.output_retries:
            return outcome
        log.info("printer %s took nothing (%s); trying again in %.1f s", uri, outcome.detail, delay)
        time.sleep(delay)
        delay *= 2
    return outcome


def release_one(node: Node, job_id: str, user: str, printer: dict[str, Any], warnings: list[str],
                confirm_interrupted: bool = False) -> ReleaseResult:
    if not valid_job_id(job_id):
        # Not an id a collector ever made: nothing to claim, and it must never reach a URL or a key.
        return _result(job_id, "not-found")
    members = node.membership.peers()
    # The site mutex lives until the release's outcome is recorded (a releaser that dies leaves it
    # taken, so no offline release can print the job while the analyst may still see it releasing).
    # A user who confirms an interrupted job takes it over; the analyst's compare-and-set decides.
    site_claim = site_claims.take(node, job_id, node.config.job_lifetime_hours * 3600,
                                 force=confirm_interrupted, printer=printer["id"])
    if site_claim is False:
        return _result(job_id, _why_taken(node, job_id))
    try:
        asked = time.time()  # the analyst's lease starts after this, so it ends after lease_until
        job, token = node.analyst.claim(job_id, collector=node.id, printer=printer["id"], user=user,
                                        lease_seconds=node.config.lease_seconds,
                                        confirm_interrupted=confirm_interrupted)
        claim = Claim(job_id, user, token, lease_until=asked + node.config.lease_seconds)
        locations = list(job.get("locations", []))
    except AnalystUnavailable as exc:
        if confirm_interrupted:
            # Only the analyst can say whether the job was interrupted. The site claim this confirm
            # took over stays: the first holder may have printed the job, so no offline release may.
            return _result(job_id, "analyst-unreachable")
        if exc.maybe_acted:
            # The claim may have gone through (a slow analyst, not a dead one). Nothing was printed,
            # so the site claim goes: if the analyst did take the claim, its lease lapses into
            # "interrupted", which only the user's confirmation releases again.
            site_claims.release_own(node, job_id, printer["id"])
            return _result(job_id, "analyst-unreachable")
        if site_claim is None:  # neither the analyst nor Redis can vouch that nobody else prints it
            return _result(job_id, "analyst-unreachable")
        if not site_claims.ready(node):
            # Redis restarted empty and has not been given back the claims it forgot.
            site_claims.release_own(node, job_id, printer["id"])
            return _result(job_id, "analyst-unreachable")
        # Offline: the site claim stands until the release is replayed to the analyst.
        claim = Claim(job_id, user, 0, now_iso())
        # Offline we do not know the copies: this node, else every live peer (one without it says so).
        locations = [node.id] if copies.printable_here(node, job_id, offline=True) else sorted(members)
    except PullprintError as exc:
        if not confirm_interrupted:  # a confirm's claim (taken over from the interrupted holder) stays
            site_claims.release_own(node, job_id, printer["id"])
        if exc.code == INTERRUPTED:
            return _result(job_id, INTERRUPTED)
        code = {404: "not-found", 403: "not-owner", 409: "not-releasable"}.get(exc.status, exc.code)
        return _result(job_id, code)
    if not claim.offline_at:
        return _deliver(node, claim, printer, locations, members, warnings)
    # Write-ahead: the journal knows of the offline claim before any byte goes out. A releaser that
    # dies mid-print leaves it unsettled, and its replay tells the analyst the release was
    # interrupted (user decides), even if Redis, the only other record of it, is lost or unreachable.
    node.journal.append(journal.OFFLINE_CLAIM, {"id": job_id, "user": user, "printer": printer["id"],
                                                "at": claim.offline_at, "collector": node.id})
    result = _deliver(node, claim, printer, locations, members, warnings)
    if result.status != INTERRUPTED:
        node.journal.append(journal.OFFLINE_CLAIM_SETTLED, {"id": job_id})
    return result


def _deliver(node: Node, claim: Claim, printer: dict[str, Any], locations: list[str],
             members: dict[str, Member], warnings: list[str]) -> ReleaseResult:
    """Print a claimed job here, or have a live holder of a copy print it (or pull it here first)."""
    job_id = claim.job_id
    if copies.printable_here(node, claim.job_id, offline=bool(claim.offline_at)):
        result = print_here(node, claim, printer, locations)
        result.warnings = warnings
        return result
    holders = [members[loc] for loc in locations if loc in members]
    if not holders:
        _finish(node, claim, JobState.HELD, reason="unavailable", printer=printer["id"])
        return _result(job_id, "unavailable")
    for holder in holders:
        try:
            if node.config.release_mode == "pull":
                copies.pull_copy(node, job_id, holder)
                result = print_here(node, claim, printer, [*locations, node.id])
            else:
                body = {"printer": printer, "claim": claim.to_json(), "locations": locations}
                answer = node.peers.print_direct(holder, job_id, body,
                                                 timeout=node.config.printer_lock_wait_seconds
                                                 + node.config.output_timeout * 2)
                result = ReleaseResult(job_id, answer["status"], answer.get("message", ""))
        except PeerUnreachable as exc:
            if exc.maybe_acted and node.config.release_mode != "pull":
                log.warning("direct print of %s on %s interrupted: %s", job_id, holder.id, exc.message)
                return _result(job_id, INTERRUPTED)
            continue  # never reached that holder (or only read from it): the next one may serve
        except PullprintError as exc:
            log.warning("release of %s via %s failed: %s", job_id, holder.id, exc.message)
            continue
        result.warnings = warnings
        return result
    _finish(node, claim, JobState.HELD, reason="unavailable", printer=printer["id"])
    return _result(job_id, "unavailable")
