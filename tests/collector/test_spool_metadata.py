"""A job's metadata on disk names neither its owner nor its document, and dies with the job's key."""

import json
import os

import pytest

from collector.spool import CLEAR_FIELDS, SpoolStore, new_job_id
from pullprint.errors import NotFound

KEY = bytes(range(32))
META = {"owner": "alice.wonder", "title": "Salaries 2026 Q3 (confidential).pdf", "copies": 2,
        "options": {"sides": "two-sided-long-edge"}, "content_type": "application/pdf", "origin_host": "ws-hr-07",
        "cups_job_id": "417", "idempotency_key": "urn:uuid:0f8a", "site": "main", "received_by": "c1",
        "submitted_at": "2026-11-25T07:00:00+00:00", "expires_at": "2026-11-25T15:00:00+00:00",
        "locations": ["c1", "c2"]}
SECRETS = (b"alice.wonder", b"Salaries", b"two-sided-long-edge", b"ws-hr-07", b"urn:uuid:0f8a")


@pytest.fixture
def spool(tmp_path):
    return SpoolStore(tmp_path / "spool", KEY)


def _store(spool, meta=META, data=b"%PDF-1.4 the document"):
    job_id = new_job_id()
    stored = spool.receive(job_id, [data], dict(meta), limit=10**6)
    return job_id, stored


def _on_disk(spool, job_id) -> bytes:
    return (spool.jobs / f"{job_id}.json").read_bytes() + (spool.jobs / f"{job_id}.spool").read_bytes()


def test_owner_title_and_options_are_not_in_clear_on_disk_but_read_back(spool):
    job_id, stored = _store(spool)
    raw = _on_disk(spool, job_id)
    for secret in SECRETS:
        assert secret not in raw
    assert stored.sha256.encode() not in raw  # the hash would tell which known document was printed
    meta = spool.meta(job_id)
    assert {k: meta[k] for k in META} == META
    assert meta["sha256"] == stored.sha256 and meta["size"] == stored.size


def test_housekeeping_reads_placement_without_decrypting(spool):
    job_id, _ = _store(spool)
    placement = spool.placement(job_id)
    assert set(placement) <= CLEAR_FIELDS
    assert placement["locations"] == ["c1", "c2"] and placement["expires_at"] == META["expires_at"]
    spool.update_meta(job_id, locations=["c1", "c3"], provisional=False)
    assert spool.meta(job_id)["locations"] == ["c1", "c3"] and spool.meta(job_id)["title"] == META["title"]
    spool.update_meta(job_id, title="renamed")  # a sealed field: sealed again
    assert spool.meta(job_id)["title"] == "renamed" and b"renamed" not in _on_disk(spool, job_id)


def test_a_replica_is_sealed_on_the_peer_too(spool, tmp_path):
    job_id, _ = _store(spool)
    peer = SpoolStore(tmp_path / "peer", KEY)
    with spool.open_sealed(job_id) as sealed:
        peer.store_replica(job_id, sealed, {**spool.meta(job_id), "provisional": True})
    for secret in SECRETS:
        assert secret not in _on_disk(peer, job_id)
    assert peer.meta(job_id)["owner"] == "alice.wonder"


def test_a_deleted_jobs_metadata_is_unreadable_even_from_a_copy_of_the_disk(spool, tmp_path):
    job_id, _ = _store(spool)
    old_meta = tmp_path / "old.json"
    os.link(spool.jobs / f"{job_id}.json", old_meta)  # a disk image or backup keeps these blocks
    os.link(spool.jobs / f"{job_id}.spool", tmp_path / "old.spool")
    assert spool.delete(job_id)
    # Even with the installation key and both files, the metadata key went with the shredded header.
    os.link(tmp_path / "old.spool", spool.jobs / f"{job_id}.spool")
    os.link(old_meta, spool.jobs / f"{job_id}.json")
    with pytest.raises(NotFound):
        SpoolStore(spool.root, KEY).meta(job_id)


def test_a_user_s_jobs_are_found_by_a_keyed_hash_of_the_name(spool):
    mine, _ = _store(spool)
    _store(spool, {**META, "owner": "bob"})
    provisional, _ = _store(spool)
    spool.update_meta(provisional, provisional=True)
    assert [m["id"] for m in spool.jobs_of("alice.wonder")] == [mine]
    assert spool.jobs_of("nobody") == []


def test_metadata_written_before_sealing_is_still_read_then_sealed_and_scrubbed(spool, tmp_path):
    job_id, stored = _store(spool)
    plain = {**META, "id": job_id, "size": stored.size, "sha256": stored.sha256, "pages": None}
    meta_path = spool.jobs / f"{job_id}.json"
    meta_path.write_text(json.dumps(plain))  # as an older collector wrote it
    old_inode = tmp_path / "old.json"
    os.link(meta_path, old_inode)
    assert spool.meta(job_id) == plain
    assert [m["id"] for m in spool.jobs_of("alice.wonder")] == [job_id]

    assert spool.seal_legacy_metadata() == 1
    assert spool.seal_legacy_metadata() == 0
    for secret in SECRETS:
        assert secret not in _on_disk(spool, job_id)
        assert secret not in old_inode.read_bytes()  # the old file's bytes were overwritten, not just unlinked
    assert {k: spool.meta(job_id)[k] for k in plain} == plain


def test_an_update_seals_an_old_metadata_file_as_well(spool):
    job_id, stored = _store(spool)
    (spool.jobs / f"{job_id}.json").write_text(json.dumps({**META, "id": job_id, "size": stored.size}))
    spool.update_meta(job_id, provisional=False)
    assert b"alice.wonder" not in _on_disk(spool, job_id)
    assert spool.meta(job_id)["owner"] == "alice.wonder" and spool.meta(job_id)["provisional"] is False
