"""The journal across processes: workers append while the housekeeping replays and trims, and nothing is lost."""

import collections
import contextlib
import json
import multiprocessing
from pathlib import Path

from collector.journal import Deferred, Journal

WRITERS = 4
PER_WRITER = 1000
DEFERRED_EVERY = 50      # these wait for another node forever: they must still be in the journal at the end
INTERRUPT_EVERY = 97     # the analyst goes away on these once: the replay stops, the next one sends them


def _append_entries(path: str, writer: int, start) -> None:
    """A gunicorn worker journalling finishes the analyst could not take."""
    journal = Journal(path)
    start.wait()
    for seq in range(PER_WRITER):
        journal.append("finish", {"id": f"w{writer}-{seq}", "writer": writer, "seq": seq})


def _replay_until_done(path: str, writers_done, start, out: str) -> None:
    """The housekeeping process: replays (and so rewrites the journal) as fast as it can."""
    journal = Journal(path)
    delivered: list[str] = []
    interrupted: set[str] = set()
    trims_while_appending = 0

    def deliver(kind: str, payload: dict) -> None:
        if payload["seq"] % DEFERRED_EVERY == 0:
            raise Deferred(payload["id"])
        if payload["seq"] % INTERRUPT_EVERY == 3 and payload["id"] not in interrupted:
            interrupted.add(payload["id"])
            raise ConnectionError("analyst away")
        delivered.append(payload["id"])

    start.wait()
    while True:
        finished = writers_done.is_set()
        before = len(delivered)
        with contextlib.suppress(ConnectionError):
            journal.replay(deliver)
        if not finished and len(delivered) > before:
            trims_while_appending += 1
        if finished and len(delivered) == before:
            break
    Path(out).write_text(json.dumps({"delivered": delivered, "trims_while_appending": trims_while_appending}))


def test_concurrent_appends_and_trims_lose_nothing_and_send_nothing_twice(tmp_path):
    path, out = str(tmp_path / "journal.jsonl"), str(tmp_path / "delivered.json")
    Journal(path)
    # spawn: separate interpreters, like gunicorn's workers and the housekeeping, with no shared locks
    mp = multiprocessing.get_context("spawn")
    start, writers_done = mp.Event(), mp.Event()
    writers = [mp.Process(target=_append_entries, args=(path, w, start)) for w in range(WRITERS)]
    replayer = mp.Process(target=_replay_until_done, args=(path, writers_done, start, out))
    processes = [*writers, replayer]
    try:
        for process in processes:
            process.start()
        start.set()
        for writer in writers:
            writer.join(120)
            assert writer.exitcode == 0
        writers_done.set()
        replayer.join(120)
        assert replayer.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()

    result = json.loads(Path(out).read_text())
    delivered, remaining = result["delivered"], [e["payload"]["id"] for e in Journal(path).entries()]
    appended = {f"w{w}-{s}" for w in range(WRITERS) for s in range(PER_WRITER)}
    assert result["trims_while_appending"] >= 5, "the replays must have rewritten the journal under the writers"
    counts = collections.Counter(delivered + remaining)
    assert sorted(appended - set(counts)) == [], "appended entries were lost"
    # The documented idempotence allows sending an entry again only when the node died after
    # delivering it and before trimming it. No process dies here, so each entry is delivered
    # exactly once or is still in the journal — never both, never twice.
    assert sorted(k for k, n in counts.items() if n > 1) == []
    assert set(counts) == appended
    deferred = {f"w{w}-{s}" for w in range(WRITERS) for s in range(0, PER_WRITER, DEFERRED_EVERY)}
    assert deferred <= set(remaining)
    for writer in range(WRITERS):  # one writer's entries reach the analyst in the order they were written
        seqs = [int(i.split("-")[1]) for i in delivered if i.startswith(f"w{writer}-")]
        assert seqs == sorted(seqs)


def test_an_append_after_a_torn_line_is_kept(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("register", {"id": "a"})
    with open(journal.path, "a") as fh:
        fh.write('{"kind": "regis')  # the process died in the middle of an append
    journal.append("register", {"id": "b"})
    assert [e["payload"]["id"] for e in journal.entries()] == ["a", "b"]
    assert journal.replay(lambda kind, payload: None) == 2
    assert journal.entries() == []
