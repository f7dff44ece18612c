"""The spool's encryption: chunked AES-256-GCM with a fresh key per job, wrapped by the installation key.

File layout (all integers big-endian)::

    magic      8 bytes   b"PPSPOOL1"
    wrapped   40 bytes   the job's 256-bit data key, AES key-wrapped (RFC 3394) by the installation key
    prefix     7 bytes   random nonce prefix
    chunks     repeated: u32 length of the sealed chunk, then the chunk (ciphertext + 16-byte tag)

Chunk i is sealed with nonce = prefix || u32(i) || u8(last) and associated data = header || job id,
the STREAM construction: a reordered, dropped or truncated chunk, a file swapped between jobs, or a
missing final chunk all fail to decrypt. Overwriting the wrapped key destroys the job for good
(crypto-shredding), whatever copies of the ciphertext a disk keeps.

A job's sensitive metadata is sealed (`seal_fields`) under a key derived from the same data key
(`metadata_key`), so it is shredded with the document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

MAGIC = b"PPSPOOL1"
WRAPPED_LEN = 40
PREFIX_LEN = 7
HEADER_LEN = len(MAGIC) + WRAPPED_LEN + PREFIX_LEN
CHUNK = 64 * 1024
TAG = 16
_LEN = struct.Struct(">I")


class CorruptSpool(Exception):
    """A spool file failed authentication: tampered, truncated, or sealed under another key or job."""


def new_installation_key() -> bytes:
    """A fresh 256-bit installation key."""
    return AESGCM.generate_key(bit_length=256)


def load_installation_key(path: str | os.PathLike[str]) -> bytes:
    """Read a key file: 32 raw bytes or 64 hex characters."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) != 32:  # not raw: hex text, maybe with a newline (raw bytes are never stripped)
        text = data.strip()
        try:
            data = bytes.fromhex(text.decode("ascii")) if len(text) == 64 else text
        except (UnicodeDecodeError, ValueError):
            data = b""
    if len(data) != 32:
        raise ValueError(f"installation key in {path} must be 32 bytes (or 64 hex characters)")
    return data


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


class SpoolWriter:
    """Encrypts a document as it streams in; `finish()` seals the last chunk."""

    def __init__(self, installation_key: bytes, job_id: str, out: BinaryIO) -> None:
        data_key = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(data_key)
        self._prefix = os.urandom(PREFIX_LEN)
        header = MAGIC + aes_key_wrap(installation_key, data_key) + self._prefix
        self._aad = header + job_id.encode()
        self._out = out
        self._out.write(header)
        self._buffer = bytearray()
        self._index = 0
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]

    def _seal(self, plain: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), plain, self._aad)
        self._out.write(_LEN.pack(len(sealed)) + sealed)
        self._index += 1

    def finish(self) -> str:
        """Seal the final chunk; return the SHA-256 (hex) of the plaintext."""
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return self._sha.hexdigest()


def _read_exact(src: BinaryIO, n: int) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise CorruptSpool("spool file is truncated")
    return data


def decrypt_stream(installation_key: bytes, job_id: str, src: BinaryIO) -> Iterator[bytes]:
    """Yield the plaintext chunks of a spool file, authenticating each one.

    Raises CorruptSpool on any tampering or truncation. Callers that must not act on a partial
    document (printing) should verify the whole file first with `verify`.
    """
    header = _read_exact(src, HEADER_LEN)
    if header[: len(MAGIC)] != MAGIC:
        raise CorruptSpool("not a pullprint spool file")
    wrapped = header[len(MAGIC): len(MAGIC) + WRAPPED_LEN]
    prefix = header[len(MAGIC) + WRAPPED_LEN:]
    try:
        aead = AESGCM(aes_key_unwrap(installation_key, wrapped))
    except InvalidUnwrap:
        raise CorruptSpool("data key does not unwrap: wrong installation key or shredded job") from None
    aad = header + job_id.encode()
    index = 0
    while True:
        raw_len = src.read(_LEN.size)
        if not raw_len:
            raise CorruptSpool("spool file ends before its final chunk")
        if len(raw_len) != _LEN.size:
            raise CorruptSpool("spool file is truncated")
        (length,) = _LEN.unpack(raw_len)
        if length < TAG or length > CHUNK + TAG:
            raise CorruptSpool("bad chunk length")
        sealed = _read_exact(src, length)
        for last in (False, True):
            try:
                plain = aead.decrypt(_nonce(prefix, index, last), sealed, aad)
                break
            except InvalidTag:
                continue
        else:
            raise CorruptSpool(f"chunk {index} failed authentication")
        index += 1
        yield plain
        if last:
            if src.read(1):
                raise CorruptSpool("data after the final chunk")
            return


def verify(installation_key: bytes, job_id: str, src: BinaryIO) -> str:
    """Authenticate a whole spool file; return the plaintext SHA-256 (hex)."""
    sha = hashlib.sha256()
    for chunk in decrypt_stream(installation_key, job_id, src):
        sha.update(chunk)
    return sha.hexdigest()


def shred_header(fh: BinaryIO) -> None:
    """Overwrite the wrapped data key in an open spool file (r+b) and flush it to disk."""
    fh.seek(len(MAGIC))
    fh.write(os.urandom(WRAPPED_LEN))
    fh.flush()
    os.fsync(fh.fileno())


# --- spool metadata -------------------------------------------------------------------------------
# A job's sensitive metadata (owner, title, options…) is sealed with a key derived from the job's
# own data key, so the crypto-shredding of the spool file's header destroys it too, in every old
# version of the metadata file a disk may still hold.
_META_INFO = b"pullprint spool metadata v1"
_OWNER_TAG_INFO = b"pullprint owner tag v1"
_NONCE = 12


def data_key_of(installation_key: bytes, header: bytes) -> bytes:
    """The job's data key from a spool file's header; CorruptSpool when shredded or foreign."""
    if len(header) < HEADER_LEN or header[: len(MAGIC)] != MAGIC:
        raise CorruptSpool("not a pullprint spool file")
    try:
        return aes_key_unwrap(installation_key, header[len(MAGIC): len(MAGIC) + WRAPPED_LEN])
    except InvalidUnwrap:
        raise CorruptSpool("data key does not unwrap: wrong installation key or shredded job") from None


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def metadata_key(data_key: bytes) -> bytes:
    """The key that seals a job's metadata, derived from (and shredded with) the job's data key."""
    return _derive(data_key, _META_INFO)


def seal_fields(meta_key: bytes, job_id: str, fields: dict[str, Any]) -> str:
    """Encrypt a JSON-able mapping for one job (AES-GCM, bound to the job id); base64 text."""
    nonce = os.urandom(_NONCE)
    plain = json.dumps(fields, separators=(",", ":")).encode()
    sealed = AESGCM(meta_key).encrypt(nonce, plain, b"meta|" + job_id.encode())
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_fields(meta_key: bytes, job_id: str, text: str) -> dict[str, Any]:
    """The mapping `seal_fields` sealed; CorruptSpool when it was tampered with or is another job's."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        plain = AESGCM(meta_key).decrypt(raw[:_NONCE], raw[_NONCE:], b"meta|" + job_id.encode())
        return dict(json.loads(plain))
    except (ValueError, InvalidTag) as exc:
        raise CorruptSpool("job metadata failed authentication") from exc


def owner_tag(installation_key: bytes, owner: str) -> str:
    """A keyed hash of a job's owner: finds a user's jobs in the spool without the name in clear."""
    mac = hmac.HMAC(_derive(installation_key, _OWNER_TAG_INFO), hashes.SHA256())
    mac.update(owner.encode())
    return mac.finalize()[:16].hex()
