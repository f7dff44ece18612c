"""Exactly once across a collector kill, a Redis fault and an analyst outage (the fault suite's duplicates).

Two interleavings the short fault suite hit (seeds 103 and 104, docs/guarantees.md), each replayed
here step by step against the real Redis with a stand-in analyst:

- A release that gives up before printing (the analyst refuses the claim) must free only its own
  site claim. When Redis timed out on its `take` (a delayed Redis link), the claim it finds is the
  one a releaser that died mid-print left on the interrupted job; freeing that let an offline
  release (analyst link cut) print the job a second time.
- A printed job's copies go before the analyst records it printed. A holder killed between the two
  left a peer's replica of a job the analyst had as printed; a Redis restart forgot its `gone` mark,
  and an offline listing offered the stale copy again.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from collector import site_claims
from collector.node import build_node
from collector.release import Claim, print_here, release_one
from pullprint.errors import Conflict
from pullprint.states import INTERRUPTED, JobState
from tests.collector.test_redis_trust import Analyst, Sink, _submit


@pytest.fixture
def node(tmp_path, redis_settings, redis):
    from collector.config import CollectorConfig

    config = dataclasses.replace(CollectorConfig(), id="c1", spool_dir=str(tmp_path), installation_key="11" * 32,
                                 session_key="k" * 32, analyst_url="http://127.0.0.1:9", insecure_plain_http=True,
                                 printer_lock_wait_seconds=2, output_retries=0, **redis_settings)
    built = build_node(config)
    built.analyst = Analyst()  # type: ignore[assignment]
    built.directory.analyst = built.analyst  # type: ignore[assignment]
    yield built
    built.close()


def _interrupted_with_a_dead_holder(node) -> str:
    """A job c2 claimed for p1 and was killed printing: interrupted at the analyst, c2's site claim still taken."""
    job_id = _submit(node, b"%PDF-1.7 one page")["id"]
    dead = build_node(dataclasses.replace(node.config, id="c2"))
    try:
        assert site_claims.take(dead, job_id, 3600, printer="p1") is True
    finally:
        dead.close()
    node.analyst.jobs[job_id].update(state=JobState.HELD, state_reason=INTERRUPTED)
    return job_id


def _refuse_claim(node, code: str) -> None:
    def claim(job_id, **_):
        raise Conflict(code, "the analyst refuses this claim")

    node.analyst.claim = claim


def test_a_release_redis_could_not_answer_leaves_a_dead_releasers_claim(node, monkeypatch) -> None:
    job_id = _interrupted_with_a_dead_holder(node)
    _refuse_claim(node, INTERRUPTED)
    with monkeypatch.context() as patched:
        patched.setattr(site_claims, "take", lambda *_, **__: None)  # Redis timed out on the take
        result = release_one(node, job_id, "alice", {"id": "p2"}, [])
    assert result.status == INTERRUPTED
    # The dead releaser's claim is still there: no offline release may print the job.
    assert site_claims.holder(node, job_id) == ("c2", "p1")
    assert site_claims.claimed_or_gone(node, [job_id]) == {job_id}
    assert site_claims.take(node, job_id, 3600, printer="p2") is False


def test_a_release_that_gives_up_frees_its_own_claim(node, monkeypatch) -> None:
    job_id = _submit(node, b"%PDF-1.7 one page")["id"]
    _refuse_claim(node, "not-releasable")
    assert release_one(node, job_id, "alice", {"id": "p2"}, []).status == "not-releasable"
    assert site_claims.holder(node, job_id) is None  # taken, then freed
    # A take that timed out after Redis had set it: the claim is this release's own, so it goes too.
    assert site_claims.take(node, job_id, 3600, printer="p2") is True
    with monkeypatch.context() as patched:
        patched.setattr(site_claims, "take", lambda *_, **__: None)
        assert release_one(node, job_id, "alice", {"id": "p2"}, []).status == "not-releasable"
    assert site_claims.holder(node, job_id) is None


def test_copies_are_gone_before_the_analyst_hears_a_job_printed(node) -> None:
    office = Sink()
    try:
        node.analyst.printers["p1"] = {"id": "p1", "uri": office.uri, "in_service": True}
        job_id = _submit(node, b"%PDF-1.7 confidential salaries")["id"]
        node.analyst.jobs[job_id].update(state=JobState.RELEASING,
                                         claim={"by": "c1", "printer": "p1", "token": 1})
        at_finish: list[tuple[str, bool]] = []
        finish = node.analyst.finish

        def recording_finish(job_id, *, state, **fields):
            # What a SIGKILL right here would leave behind: with a copy left, a printed record and
            # a Redis restart make that copy releasable offline.
            at_finish.append((state, node.spool.has(job_id)))
            return finish(job_id, state=state, **fields)

        node.analyst.finish = recording_finish
        result = print_here(node, Claim(job_id, "alice", 1), node.directory.printer("p1"), [node.id])
        assert result.status == JobState.PRINTED
        assert at_finish == [(JobState.PRINTED, False)]
    finally:
        office.close()


@pytest.mark.parametrize("refusal", ["unreachable", "not-releasable"])
def test_a_confirmed_re_release_that_fails_keeps_the_interrupted_jobs_claim(node, refusal: str) -> None:
    """The user confirms an interrupted job; the confirm takes the dead holder's claim over, then the
    analyst is away (or refuses). The claim stays, so no offline release prints what the first
    holder may already have printed."""
    from collector.analyst_client import AnalystUnavailable

    job_id = _interrupted_with_a_dead_holder(node)
    if refusal == "unreachable":
        def claim(job_id, **_):
            raise AnalystUnavailable("analyst-unreachable", "the analyst is away")
        node.analyst.claim = claim
    else:
        _refuse_claim(node, refusal)
    result = release_one(node, job_id, "alice", {"id": "p2"}, [], confirm_interrupted=True)
    assert result.status in ("analyst-unreachable", "not-releasable")
    assert site_claims.claimed_or_gone(node, [job_id]) == {job_id}
    assert site_claims.take(node, job_id, 3600, printer="p3") is False  # an offline release is refused


@pytest.mark.parametrize(("lease_used", "renewals", "status"), [
    (0.0, 0, JobState.PRINTED),           # claimed a moment ago: nobody can have taken the job over
    (0.5, 1, JobState.PRINTED),           # waited for the printer: the lease is renewed first
    (0.5, 1, "not-releasable"),           # ...and a claim superseded meanwhile sends nothing
])
def test_the_claim_is_renewed_before_sending_unless_it_was_just_taken(node, lease_used, renewals, status) -> None:
    office = Sink()
    try:
        node.analyst.printers["p1"] = {"id": "p1", "uri": office.uri, "in_service": True}
        data = b"%PDF-1.7 board minutes"
        job_id = _submit(node, data)["id"]
        node.analyst.jobs[job_id].update(state=JobState.RELEASING, claim={"by": "c1", "printer": "p1", "token": 1})
        asked: list[str] = []

        def renew(job_id, **_):
            asked.append(job_id)
            if status == "not-releasable":
                raise Conflict("stale-token", "a newer claim holds this job")
            return node.analyst.jobs[job_id]

        node.analyst.renew = renew
        lease = node.config.lease_seconds
        claim = Claim(job_id, "alice", 1, lease_until=time.time() + lease * (1 - lease_used))
        result = print_here(node, claim, node.directory.printer("p1"), [node.id])
        assert (result.status, len(asked)) == (status, renewals)
        deadline = time.monotonic() + 5
        while status == JobState.PRINTED and not office.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert office.received == ([data] if status == JobState.PRINTED else [])
    finally:
        office.close()


def test_a_copy_a_dead_peer_kept_stays_gone_across_a_redis_restart_until_it_is_shredded(node, redis,
                                                                                        monkeypatch) -> None:
    """The fault suite's long run: a job printed while c2 (holding its replica) was away; Redis
    restarted empty and forgot the job's `gone` mark; with the analyst away, c2 released its copy
    offline and the job printed twice. The releaser's journal now keeps the leftover copy."""
    from collector import copies, replay

    office = Sink()
    try:
        node.analyst.printers["p1"] = {"id": "p1", "uri": office.uri, "in_service": True}
        job_id = _submit(node, b"%PDF-1.7 payroll")["id"]
        node.analyst.jobs[job_id].update(state=JobState.RELEASING, claim={"by": "c1", "printer": "p1", "token": 1})
        result = print_here(node, Claim(job_id, "alice", 1), node.directory.printer("p1"), [node.id, "c2"])
        assert result.status == JobState.PRINTED
        assert [(e["kind"], e["payload"]["collector"]) for e in node.journal.entries()] == [("copy-left", "c2")]

        redis.flushall()  # Redis restarted empty: the `gone` mark is forgotten...
        assert not site_claims.is_gone(node, job_id)
        site_claims.reassert_journal_claims(node)  # ...and put back from the releaser's journal
        assert site_claims.is_gone(node, job_id) and site_claims.claimed_or_gone(node, [job_id]) == {job_id}

        replay.replay_journal(node)  # c2 still away: the entry waits
        assert len(node.journal) == 1
        shredded: list[tuple[str, str]] = []
        monkeypatch.setattr(node.membership, "peers", lambda: {"c2": "c2's address"})
        monkeypatch.setattr(node.peers, "delete", lambda peer, job: shredded.append((peer, job)))
        replay.replay_journal(node)  # c2 is back: its copy goes, and so does the entry
        assert shredded == [("c2's address", job_id)] and len(node.journal) == 0
        copies.shred_left_copy(node, job_id, "c2", "2000-01-01T00:00:00+00:00")  # past the job's lifetime:
        assert len(shredded) == 1                                                # dropped, nothing sent
    finally:
        office.close()
