"""The spool keeps documents encrypted, whole or not at all, and forgets them for good."""

import os

import pytest

from collector.spool import SpoolStore, TruncatedUpload, new_job_id
from pullprint import crypto
from pullprint.errors import NotFound, TooLarge

KEY = bytes(range(32))


def chunks(data: bytes, size: int = 10_000):
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.fixture
def spool(tmp_path):
    return SpoolStore(tmp_path / "spool", KEY)


def test_stored_job_reads_back_and_is_encrypted_at_rest(spool):
    data = b"%PDF-1.4 salary table " + os.urandom(100_000)
    job_id = new_job_id()
    stored = spool.receive(job_id, chunks(data), {"owner": "alice"}, limit=10**6)
    assert stored.size == len(data)
    assert b"".join(spool.plaintext(job_id)) == data
    assert spool.verify(job_id) == stored.sha256
    raw = (spool.jobs / f"{job_id}.spool").read_bytes()
    assert b"salary table" not in raw
    assert spool.meta(job_id)["owner"] == "alice"


def test_upload_that_breaks_off_leaves_nothing(spool):
    def broken():
        yield b"x" * 70_000
        raise TruncatedUpload("truncated-upload", "client went away")

    with pytest.raises(TruncatedUpload):
        spool.receive(new_job_id(), broken(), {"owner": "alice"}, limit=10**6)
    assert spool.job_ids() == [] and list(spool.tmp.iterdir()) == []


def test_oversized_upload_is_refused_and_leaves_nothing(spool):
    with pytest.raises(TooLarge):
        spool.receive(new_job_id(), chunks(b"y" * 300_000), {"owner": "alice"}, limit=200_000)
    assert spool.job_ids() == [] and list(spool.tmp.iterdir()) == []


def test_replica_must_match_its_hash(spool, tmp_path):
    other = SpoolStore(tmp_path / "peer", KEY)
    job_id = new_job_id()
    stored = spool.receive(job_id, chunks(b"document"), {"owner": "bob"}, limit=10**6)
    meta = spool.meta(job_id)
    with spool.open_sealed(job_id) as sealed:
        other.store_replica(job_id, sealed, meta)
    assert other.verify(job_id) == stored.sha256
    third = SpoolStore(tmp_path / "third", KEY)
    with spool.open_sealed(job_id) as sealed, pytest.raises(TruncatedUpload):
        third.store_replica(job_id, sealed, {**meta, "sha256": "0" * 64})
    assert not third.has(job_id)


def test_deleted_job_is_unreadable_even_from_a_copy_of_the_disk(spool, tmp_path):
    job_id = new_job_id()
    spool.receive(job_id, chunks(b"secret"), {"owner": "alice"}, limit=10**6)
    # A hard link keeps the file's blocks alive after the unlink, like a disk image or a backup would.
    leftover = tmp_path / "leftover.spool"
    os.link(spool.jobs / f"{job_id}.spool", leftover)
    assert spool.delete(job_id)
    assert not spool.has(job_id)
    assert not spool.delete(job_id)
    with open(leftover, "rb") as fh, pytest.raises(crypto.CorruptSpool, match="unwrap"):
        crypto.verify(KEY, job_id, fh)


def test_leftovers_of_a_crash_are_cleared_at_start(tmp_path):
    spool = SpoolStore(tmp_path / "s", KEY)
    (spool.tmp / "half-written.spool").write_bytes(b"partial")
    spool = SpoolStore(tmp_path / "s", KEY)
    assert spool.clear_leftovers() == 1  # called by `pullprint collector` before it serves
    assert list(spool.tmp.iterdir()) == []


def test_job_ids_are_never_paths(spool):
    for bad in ("../../etc/passwd", "a" * 31, "A" * 32, ""):
        with pytest.raises(NotFound):
            spool.meta(bad)


def test_an_incoming_document_joins_the_spool_only_with_its_metadata(spool):
    job_id = new_job_id()
    with spool.incoming(job_id, chunks(b"first try"), limit=10**6) as incoming:
        with incoming.open_sealed() as fh:  # what a peer's replica is made from, before the commit
            assert crypto.verify(KEY, job_id, fh) == incoming.stored.sha256
        assert not spool.has(job_id)
    assert not spool.has(job_id) and list(spool.tmp.iterdir()) == []  # never committed: nothing left
    with spool.incoming(job_id, chunks(b"second try"), limit=10**6) as incoming:
        incoming.commit({"id": job_id, "owner": "alice", "locations": ["c1", "c2"]})
    assert spool.meta(job_id)["locations"] == ["c1", "c2"] and spool.meta(job_id)["owner"] == "alice"
    assert b"".join(spool.plaintext(job_id)) == b"second try" and list(spool.tmp.iterdir()) == []
