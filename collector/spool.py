"""SpoolStore: the collector's encrypted, hashed, fsynced job files, renamed into place atomically.

A job is two files in `jobs/`: `<id>.spool`, the document sealed by pullprint.crypto, and
`<id>.json`, its metadata. Only what the housekeeping needs about every copy stays in clear in the
metadata (`CLEAR_FIELDS`: where the copies are, whether the job is acknowledged yet, when it
expires, its size); everything else — owner, title, options, origin host, CUPS ids, the document's
hash — is sealed with a key derived from the job's own data key (`"sealed"`), and the owner is
findable through a keyed hash (`"owner_tag"`). Shredding the spool file's header therefore makes
every version of the metadata unreadable too. Metadata files written before sealing (no
`"sealed"` field) are still read, and are sealed when next updated or by `seal_legacy_metadata`.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from pullprint import crypto
from pullprint.errors import BadRequest, NotFound, TooLarge
from pullprint.ids import valid_job_id

READ_SIZE = 64 * 1024
# Metadata kept readable without any key: what reconcile, repair, the orphan sweep and the
# replication census read for every copy. Nothing here names a person or a document.
CLEAR_FIELDS = frozenset({"id", "site", "received_by", "submitted_at", "expires_at", "locations", "provisional",
                          "size"})
META_FORMAT = 2  # 1 (no "format" field): everything in clear
RETIRING = "retiring"  # a file beside jobs/: this node is handing its jobs over (`pullprint collector --hand-over`)
_KEY_CACHE_MAX = 65_536  # jobs' metadata keys kept per process, so listing a user's jobs reads one file per job


def new_job_id() -> str:
    return uuid.uuid4().hex


def check_job_id(job_id: str) -> str:
    """Job ids become file names: accept only our own format."""
    if not valid_job_id(job_id):
        raise NotFound("not-found", "no such job")
    return job_id


class ByteSource(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class TruncatedUpload(BadRequest):
    pass


@dataclass(frozen=True)
class StoredJob:
    job_id: str
    size: int
    sha256: str
    pages: int | None


class IncomingJob:
    """A received document, sealed and fsynced in tmp/, not in the spool until `commit`."""

    def __init__(self, spool: SpoolStore, stored: StoredJob, tmp_spool: Path) -> None:
        self._spool = spool
        self.stored = stored
        self._tmp_spool = tmp_spool

    def open_sealed(self) -> BinaryIO:
        """The sealed file, as a peer's replica is made from it."""
        return open(self._tmp_spool, "rb")

    def commit(self, meta: dict[str, Any]) -> None:
        """Write the metadata (once, fsynced) and rename both files into the spool."""
        self._spool._commit(self.stored.job_id, self._tmp_spool, meta)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolStore:
    """Job files under `root/jobs`: `<id>.spool` (sealed by pullprint.crypto) and `<id>.json` (metadata)."""

    def __init__(self, root: str | os.PathLike[str], installation_key: bytes) -> None:
        self.root = Path(root)
        self.jobs = self.root / "jobs"
        self.tmp = self.root / "tmp"
        self._key = installation_key
        self._meta_keys: dict[str, bytes] = {}
        for folder in (self.root, self.jobs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def clear_leftovers(self) -> int:
        """Delete what a crash left in tmp/: uploads and replicas that never finished (never acknowledged).

        Only for a node that is not serving yet: every worker process writes there.
        """
        count = 0
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            count += 1
        return count

    def _tmp(self, name: str) -> Path:
        # Unique per write: two workers may handle the same job at once (a replica and a repair).
        return self.tmp / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

    def _paths(self, job_id: str) -> tuple[Path, Path]:
        check_job_id(job_id)
        return self.jobs / f"{job_id}.spool", self.jobs / f"{job_id}.json"

    def writable(self) -> bool:
        probe = self._tmp(".probe")  # unique: health checks arrive concurrently
        try:
            probe.write_bytes(b"x")
            probe.unlink()
            return True
        except OSError:
            return False

    # -- metadata on disk ----------------------------------------------------------------------
    def _meta_key_in(self, spool_path: Path) -> bytes:
        """The key that seals the job's metadata, from its spool file's header."""
        try:
            with open(spool_path, "rb") as fh:
                return crypto.metadata_key(crypto.data_key_of(self._key, fh.read(crypto.HEADER_LEN)))
        except (FileNotFoundError, crypto.CorruptSpool):
            # Deleted (or being deleted: the header is shredded first): there is no job to describe.
            raise NotFound("not-found", "this collector holds no readable copy of the job") from None

    def _meta_key(self, job_id: str, spool_path: Path) -> bytes:
        # A job id is never reused and every copy of a job has the same header, so a job's key
        # never changes while its file exists; `delete` forgets it.
        key = self._meta_keys.get(job_id)
        if key is None:
            key = self._meta_key_in(spool_path)
            if len(self._meta_keys) >= _KEY_CACHE_MAX:
                self._meta_keys.clear()
            self._meta_keys[job_id] = key
        return key

    def _on_disk(self, job_id: str, meta: dict[str, Any], spool_path: Path) -> dict[str, Any]:
        """The metadata as stored: the clear fields, the owner's keyed hash, the rest sealed."""
        clear = {k: v for k, v in meta.items() if k in CLEAR_FIELDS}
        secret = {k: v for k, v in meta.items() if k not in CLEAR_FIELDS}
        record: dict[str, Any] = {"format": META_FORMAT, **clear,
                                  "sealed": crypto.seal_fields(self._meta_key_in(spool_path), job_id, secret)}
        if isinstance(meta.get("owner"), str):
            record["owner_tag"] = crypto.owner_tag(self._key, meta["owner"])
        return record

    def _read_record(self, job_id: str) -> dict[str, Any]:
        _, meta_path = self._paths(job_id)
        try:
            return dict(json.loads(meta_path.read_text()))
        except FileNotFoundError:
            raise NotFound("not-found", "this collector holds no copy of the job") from None

    def _write_record(self, job_id: str, record: dict[str, Any], *, durable: bool = False) -> Path:
        tmp_meta = self._tmp(f"{job_id}.json")
        with open(tmp_meta, "w") as fh:
            json.dump(record, fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        return tmp_meta

    def _commit(self, job_id: str, tmp_spool: Path, meta: dict[str, Any]) -> None:
        spool_path, meta_path = self._paths(job_id)
        tmp_meta = self._write_record(job_id, self._on_disk(job_id, meta, tmp_spool), durable=True)
        # The spool file goes first: a metadata file always has its document beside it.
        os.replace(tmp_spool, spool_path)
        os.replace(tmp_meta, meta_path)
        _fsync_dir(self.jobs)

    def receive(self, job_id: str, chunks: Iterable[bytes], meta: dict[str, Any], *, limit: int,
                count_pages: Any = None) -> StoredJob:
        """Encrypt an incoming document into the spool with `meta`; nothing is left behind if it fails."""
        with self.incoming(job_id, chunks, limit=limit, count_pages=count_pages) as incoming:
            stored = incoming.stored
            incoming.commit({**meta, "id": job_id, "size": stored.size, "sha256": stored.sha256,
                             "pages": stored.pages})
        return stored

    @contextlib.contextmanager
    def incoming(self, job_id: str, chunks: Iterable[bytes], *, limit: int,
                 count_pages: Any = None) -> Iterator[IncomingJob]:
        """Encrypt an incoming document into tmp/ (fsynced); it joins the spool only when the caller
        commits it with its metadata, which is then written once, fsynced. Uncommitted, nothing is
        left behind."""
        tmp_spool = self._tmp(f"{job_id}.spool")
        try:
            with open(tmp_spool, "wb") as fh:
                writer = crypto.SpoolWriter(self._key, job_id, fh)
                for chunk in chunks:
                    if writer.size + len(chunk) > limit:
                        raise TooLarge("too-large", f"the document is larger than the limit of {limit} bytes",
                                       limit=limit)
                    writer.write(chunk)
                    if count_pages is not None:
                        count_pages.feed(chunk)
                sha256 = writer.finish()
                fh.flush()
                os.fsync(fh.fileno())
            pages = count_pages.pages() if count_pages is not None else None
            yield IncomingJob(self, StoredJob(job_id, writer.size, sha256, pages), tmp_spool)
        finally:
            tmp_spool.unlink(missing_ok=True)  # gone already once committed (renamed into the spool)

    def store_replica(self, job_id: str, sealed: ByteSource, meta: dict[str, Any], *,
                      limit: int | None = None) -> None:
        """Keep a peer's sealed copy, after checking it decrypts to the document it claims to be.

        `limit`: the largest document (max_job_bytes); a sealed copy longer than that document
        sealed could be is refused (413) as it streams, before it fills the disk."""
        tmp_spool = self._tmp(f"{job_id}.replica")
        # Sealing adds the header and a tag per chunk; 64 bytes a chunk is a generous bound.
        sealed_limit = None if limit is None else limit + crypto.HEADER_LEN + (limit // crypto.CHUNK + 2) * 64
        try:
            with open(tmp_spool, "wb") as fh:
                written = 0
                while block := sealed.read(READ_SIZE):
                    written += len(block)
                    if sealed_limit is not None and written > sealed_limit:
                        raise TooLarge("too-large", f"the copy is larger than a {limit}-byte document sealed",
                                       limit=limit)
                    fh.write(block)
                fh.flush()
                os.fsync(fh.fileno())
            with open(tmp_spool, "rb") as fh:
                try:
                    digest = crypto.verify(self._key, job_id, fh)
                except crypto.CorruptSpool as exc:
                    raise TruncatedUpload("corrupt-replica", f"replica does not verify: {exc}") from None
            if digest != meta.get("sha256"):
                raise TruncatedUpload("corrupt-replica", "replica does not match its SHA-256")
            self._commit(job_id, tmp_spool, meta)
        except BaseException:
            tmp_spool.unlink(missing_ok=True)
            raise

    def mark_retiring(self) -> None:
        """From now on this node takes no new job and no peer's copy: it is handing its jobs over."""
        (self.root / RETIRING).touch()

    @property
    def retiring(self) -> bool:
        return (self.root / RETIRING).exists()

    def has(self, job_id: str) -> bool:
        spool_path, meta_path = self._paths(job_id)
        return spool_path.exists() and meta_path.exists()

    def meta(self, job_id: str) -> dict[str, Any]:
        """All of a job's metadata, decrypted (owner, title, options, …)."""
        record = self._read_record(job_id)
        if "sealed" not in record:
            return record  # written before metadata was sealed
        secret = self._open(job_id, record)
        return {**{k: v for k, v in record.items() if k in CLEAR_FIELDS}, **secret}

    def _open(self, job_id: str, record: dict[str, Any]) -> dict[str, Any]:
        spool_path = self.jobs / f"{job_id}.spool"
        try:
            return crypto.open_fields(self._meta_key(job_id, spool_path), job_id, str(record["sealed"]))
        except crypto.CorruptSpool:
            self._meta_keys.pop(job_id, None)
            raise NotFound("not-found", "this collector holds no readable copy of the job") from None

    def placement(self, job_id: str) -> dict[str, Any]:
        """Where a job's copies are, whether it is acknowledged yet and when it expires: what the
        housekeeping needs about every copy, read without decrypting anything."""
        record = self._read_record(job_id)
        return {k: v for k, v in record.items() if k in CLEAR_FIELDS}

    def update_meta(self, job_id: str, **changes: Any) -> None:
        record = self._read_record(job_id)
        spool_path, meta_path = self._paths(job_id)
        if "sealed" in record and CLEAR_FIELDS.issuperset(changes):
            record |= changes  # the sealed part is unchanged: no need to decrypt it
        else:
            record = self._on_disk(job_id, self.meta(job_id) | changes, spool_path)
        os.replace(self._write_record(job_id, record), meta_path)

    def jobs_of(self, owner: str) -> list[dict[str, Any]]:
        """The metadata of `owner`'s acknowledged (not provisional) jobs here, decrypting only theirs."""
        tag = crypto.owner_tag(self._key, owner)
        found = []
        for job_id in self.job_ids():
            try:
                record = self._read_record(job_id)
                if record.get("provisional") or record.get("owner_tag", tag) != tag:
                    continue
                meta = self.meta(job_id)
            except NotFound:
                continue  # deleted meanwhile
            if meta.get("owner") == owner:  # (a file from before sealing has no tag: compare the name)
                found.append(meta)
        return found

    def seal_legacy_metadata(self) -> int:
        """Seal every metadata file written before sealing; its clear-text bytes are overwritten first.

        For a node that is not serving yet. Returns how many files were sealed.
        """
        sealed = 0
        for job_id in self.job_ids():
            try:
                record = self._read_record(job_id)
                if "sealed" in record:
                    continue
                spool_path, meta_path = self._paths(job_id)
                tmp_meta = self._write_record(job_id, self._on_disk(job_id, record, spool_path), durable=True)
            except NotFound:
                continue
            # Overwrite the old file in place before it is unlinked, so its blocks stop holding the
            # owner and title (best effort: a copy-on-write file system or an SSD may keep them).
            with contextlib.suppress(OSError), open(meta_path, "r+b") as fh:
                fh.write(b"\0" * os.fstat(fh.fileno()).st_size)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_meta, meta_path)
            sealed += 1
        if sealed:
            _fsync_dir(self.jobs)
        return sealed

    def open_sealed(self, job_id: str) -> BinaryIO:
        spool_path, _ = self._paths(job_id)
        try:
            return open(spool_path, "rb")
        except FileNotFoundError:
            raise NotFound("not-found", "this collector holds no copy of the job") from None

    def sealed_size(self, job_id: str) -> int:
        return self._paths(job_id)[0].stat().st_size

    def verify(self, job_id: str) -> str:
        """Authenticate the whole file before anything is sent to a printer; returns its SHA-256."""
        with self.open_sealed(job_id) as fh:
            return crypto.verify(self._key, job_id, fh)

    def plaintext(self, job_id: str) -> Iterator[bytes]:
        """The document's bytes, decrypted chunk by chunk."""
        with self.open_sealed(job_id) as fh:
            yield from crypto.decrypt_stream(self._key, job_id, fh)

    def delete(self, job_id: str) -> bool:
        """Crypto-shred and remove a job's files; True when there was something to delete."""
        spool_path, meta_path = self._paths(job_id)
        self._meta_keys.pop(job_id, None)
        found = False
        with contextlib.suppress(FileNotFoundError), open(spool_path, "r+b") as fh:
            crypto.shred_header(fh)
            found = True
        for path in (spool_path, meta_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                found = True
        if found:
            _fsync_dir(self.jobs)
        return found

    def job_ids(self) -> list[str]:
        return sorted(p.stem for p in self.jobs.glob("*.json"))

    def spool_files_without_meta(self) -> list[str]:
        return sorted(p.stem for p in self.jobs.glob("*.spool") if not p.with_suffix(".json").exists())
