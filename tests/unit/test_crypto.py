"""The spool's encryption: round trips, and every kind of tampering or truncation is refused."""

import io
import os

import pytest

from pullprint import crypto

KEY = bytes(range(32))


def seal(data: bytes, job_id: str = "a" * 32, key: bytes = KEY, pieces: int = 7) -> bytes:
    out = io.BytesIO()
    writer = crypto.SpoolWriter(key, job_id, out)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        writer.write(data[i:i + step])
    writer.finish()
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK - 1, crypto.CHUNK, crypto.CHUNK + 1, 5 * crypto.CHUNK + 17])
def test_round_trip_any_size(size):
    data = os.urandom(size)
    sealed = seal(data)
    assert b"".join(crypto.decrypt_stream(KEY, "a" * 32, io.BytesIO(sealed))) == data


def test_plaintext_is_not_in_the_file():
    data = b"CONFIDENTIAL PAYROLL " * 1000
    assert b"CONFIDENTIAL" not in seal(data)


def test_same_document_seals_differently_each_time():
    assert seal(b"same") != seal(b"same")  # a fresh key and nonce per job


def test_sha256_is_of_the_plaintext():
    import hashlib

    writer = crypto.SpoolWriter(KEY, "a" * 32, io.BytesIO())
    writer.write(b"hello")
    assert writer.finish() == hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize("cut", [1, 16, 100, crypto.CHUNK + 10])
def test_truncation_is_detected(cut):
    sealed = seal(os.urandom(3 * crypto.CHUNK))
    with pytest.raises(crypto.CorruptSpool):
        crypto.verify(KEY, "a" * 32, io.BytesIO(sealed[:-cut]))


def test_dropping_the_last_chunk_is_detected():
    data = os.urandom(2 * crypto.CHUNK + 5)
    sealed = seal(data)
    # Cut exactly at the boundary before the final chunk: every remaining chunk is intact.
    last_len = 5 + crypto.TAG + 4
    with pytest.raises(crypto.CorruptSpool, match="final chunk"):
        crypto.verify(KEY, "a" * 32, io.BytesIO(sealed[:-last_len]))


def test_flipped_bit_is_detected():
    sealed = bytearray(seal(os.urandom(1000)))
    sealed[-3] ^= 1
    with pytest.raises(crypto.CorruptSpool):
        crypto.verify(KEY, "a" * 32, io.BytesIO(bytes(sealed)))


def test_file_swapped_between_jobs_is_refused():
    sealed = seal(b"alice's document", job_id="a" * 32)
    with pytest.raises(crypto.CorruptSpool):
        crypto.verify(KEY, "b" * 32, io.BytesIO(sealed))


def test_wrong_installation_key_is_refused():
    with pytest.raises(crypto.CorruptSpool, match="unwrap"):
        crypto.verify(bytes(32), "a" * 32, io.BytesIO(seal(b"x")))


def test_shredded_job_cannot_be_read(tmp_path):
    path = tmp_path / "job.spool"
    path.write_bytes(seal(b"secret"))
    with open(path, "r+b") as fh:
        crypto.shred_header(fh)
    with open(path, "rb") as fh, pytest.raises(crypto.CorruptSpool):
        crypto.verify(KEY, "a" * 32, fh)


def test_installation_key_file_hex_or_raw(tmp_path):
    key = crypto.new_installation_key()
    (tmp_path / "raw").write_bytes(key)
    (tmp_path / "hex").write_text(key.hex() + "\n")
    assert crypto.load_installation_key(tmp_path / "raw") == key
    assert crypto.load_installation_key(tmp_path / "hex") == key
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(ValueError):
        crypto.load_installation_key(tmp_path / "short")
    # A raw key that begins or ends with bytes that look like whitespace is still the key.
    spaced = b"\n" + key[1:-1] + b" "
    (tmp_path / "spaced").write_bytes(spaced)
    assert crypto.load_installation_key(tmp_path / "spaced") == spaced
    (tmp_path / "not-hex").write_text("zz" * 32)
    with pytest.raises(ValueError):
        crypto.load_installation_key(tmp_path / "not-hex")


def test_sealed_metadata_opens_only_for_its_job_and_dies_with_the_header(tmp_path):
    sealed_file = seal(b"doc")
    meta_key = crypto.metadata_key(crypto.data_key_of(KEY, sealed_file[:crypto.HEADER_LEN]))
    text = crypto.seal_fields(meta_key, "a" * 32, {"owner": "alice", "title": "Salaries"})
    assert "alice" not in text and "Salaries" not in text
    assert crypto.open_fields(meta_key, "a" * 32, text) == {"owner": "alice", "title": "Salaries"}
    with pytest.raises(crypto.CorruptSpool):
        crypto.open_fields(meta_key, "b" * 32, text)  # moved to another job
    tampered = text[:-6] + ("A" if text[-6] != "A" else "B") + text[-5:]
    with pytest.raises(crypto.CorruptSpool):
        crypto.open_fields(meta_key, "a" * 32, tampered)
    spool_file = tmp_path / "job.spool"
    spool_file.write_bytes(sealed_file)
    with open(spool_file, "r+b") as fh:
        crypto.shred_header(fh)
    with pytest.raises(crypto.CorruptSpool, match="unwrap"):
        crypto.data_key_of(KEY, spool_file.read_bytes()[:crypto.HEADER_LEN])


def test_owner_tags_are_stable_keyed_and_distinct():
    assert crypto.owner_tag(KEY, "alice") == crypto.owner_tag(KEY, "alice")
    assert crypto.owner_tag(KEY, "alice") != crypto.owner_tag(KEY, "bob")
    assert crypto.owner_tag(KEY, "alice") != crypto.owner_tag(bytes(32), "alice")
