"""The journal reader (collector/journal.py): a torn, truncated or garbage journal never stops a node start
nor loses a valid entry.

Every node start reads the journal (`entries()` for the offline claims and the orphan sweep, `replay()`
for the analyst); its callers read `entry["kind"]` and `entry["payload"].get(...)`, so an entry is a
dict with a string kind and a dict payload, or it is not an entry.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from collector import journal
from collector.journal import Deferred, Journal
from tests.fuzz.profile import fuzz

SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else None  # fsync on tmpfs is cheap

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)
payload = st.fixed_dictionaries({"id": st.from_regex(r"\A[a-z0-9]{1,8}\Z")}, optional={"x": json_value})
entry = st.fixed_dictionaries({"kind": st.sampled_from([journal.REGISTER, journal.FINISH, journal.OFFLINE_CLAIM,
                                                          journal.OFFLINE_RELEASE, journal.LOCATION]),
                               "payload": payload})


def line_of(e: dict) -> bytes:
    return json.dumps(e, separators=(",", ":")).encode()


# Lines that are not entries: torn entries, JSON that is no entry, binary noise, very deep nesting.
not_an_entry = st.one_of(
    entry.flatmap(lambda e: st.integers(1, len(line_of(e)) - 1).map(lambda n: line_of(e)[:n])),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"kind": json_value, "payload": json_value}).filter(  # shaped like one, but not one
        lambda v: not (isinstance(v["kind"], str) and isinstance(v["payload"], dict))).map(
        lambda v: json.dumps(v).encode()),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.integers(1, 3).map(lambda n: b"[" * (100_000 * n)),
)


def valid(e: object) -> bool:
    return isinstance(e, dict) and isinstance(e.get("kind"), str) and isinstance(e.get("payload"), dict)


def journal_with(content: bytes) -> tuple[Journal, tempfile.TemporaryDirectory]:
    folder = tempfile.TemporaryDirectory(dir=SCRATCH)
    path = Path(folder.name) / "journal.jsonl"
    path.write_bytes(content)
    return Journal(path), folder


def read_like_a_node_start(j: Journal) -> list[dict]:
    """What a starting node does with its journal: the offline claims, the orphan sweep, the replay."""
    entries = j.entries()
    journal.settled_offline_claims(entries)
    {str(e["payload"].get("id")) for e in entries}  # noqa: B018 - copies.sweep_orphans reads them so
    delivered: list[dict] = []

    def deliver(kind, payload):
        if payload.get("id", "").startswith("d"):
            raise Deferred(payload["id"])
        delivered.append({"kind": kind, "payload": payload})

    j.replay(deliver)
    return delivered


@given(st.binary(max_size=600))
@example(b'5\n"text"\n[1]\nnull\n')  # valid JSON, no entries: entries() passed them on and replay raised
@example(b'{"kind":"register","payload":[1]}\n')  # payload.get() raised AttributeError
@example(b'{"payload":{"id":"a"}}\n')  # entry["kind"] raised KeyError
@example(b"[" * 100_000 + b"\n")  # json.loads raised RecursionError: the node could not start
@fuzz(ci_examples=150)
def test_any_journal_file_reads_without_raising(content):
    j, folder = journal_with(content)
    with folder:
        entries = j.entries()
        assert all(valid(e) for e in entries)
        read_like_a_node_start(j)
        assert all(valid(e) for e in j.entries())


@given(st.lists(st.tuples(st.booleans(), entry, not_an_entry), max_size=8), st.booleans())
@fuzz(ci_examples=150)
def test_every_valid_entry_survives_the_garbage_around_it(lines, torn_end):
    """Valid entries among garbage lines are all read, in order; the replay delivers or keeps each of them."""
    kept = [e for is_entry, e, _ in lines if is_entry]
    raw = [line_of(e) if is_entry else junk for is_entry, e, junk in lines]
    content = b"\n".join(raw) + b"\n"
    if torn_end and kept:  # the node died in the middle of one more append
        content += line_of(kept[-1])[:-3]
    j, folder = journal_with(content)
    with folder:
        assert j.entries() == kept
        j.append(journal.LOCATION, {"id": "after", "collector": "c1"})  # the first append after a restart
        assert j.entries() == [*kept, {"kind": journal.LOCATION, "payload": {"id": "after", "collector": "c1"}}]
        delivered = read_like_a_node_start(j)
        everything = [*kept, {"kind": journal.LOCATION, "payload": {"id": "after", "collector": "c1"}}]
        # Nothing is lost: each entry was delivered, in order, or waits in the journal, in order.
        assert delivered == [e for e in everything if not e["payload"]["id"].startswith("d")]
        assert j.entries() == [e for e in everything if e["payload"]["id"].startswith("d")]
