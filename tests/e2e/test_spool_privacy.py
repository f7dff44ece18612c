"""What a job leaves on disk: the spools name neither its owner nor its title, and the queue keeps no document."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import login, received_hashes, release, sha, user, wait_for

TITLE = "Salaries-2026-Q3-board-only"
OPTION = "two-sided-short-edge"


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_spool_files_hold_neither_owner_title_nor_options_in_clear(cluster, tmp_path):
    alice = user(cluster, "alice")
    printer = cluster.printers[1]
    marker = os.urandom(16).hex().encode()
    data = b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n(" + marker + b") show\nshowpage\n"
    document = tmp_path / "salaries.ps"
    document.write_bytes(data)
    env = {**os.environ, "CUPS_SERVER": cluster.cupsd.server}
    subprocess.run(["lp", "-U", "alice", "-t", TITLE, "-o", f"sides={OPTION}", "-d", "SecurePrint", str(document)],
                   env=env, check=True, capture_output=True)

    def held():
        answer = login(cluster, printer["id"], badge=alice["badge"]).json()
        jobs = [j for j in answer["jobs"] if j["title"] == TITLE]
        return (answer["session"], jobs[0]) if jobs else None

    token, job = wait_for(held, 30, "the lp job to be held")  # the cluster itself still knows the title

    holders = [c for c in cluster.collectors.values() if (c.spool_dir / "jobs" / f"{job['id']}.json").exists()]
    assert len(holders) == 2  # the receiver's copy and the replica
    for collector in holders:
        for path in _files(collector.spool_dir / "jobs"):
            raw = path.read_bytes()
            assert TITLE.encode() not in raw, path
            assert b"alice" not in raw, path
            assert OPTION.encode() not in raw, path
            assert marker not in raw, path  # (the document, encrypted as before)
    # The workstation side (the queue's cupsd, PreserveJobFiles No) keeps no copy of the document
    # once the backend has handed it over and the CUPS job is completed.
    wait_for(lambda: not any(marker in p.read_bytes() for p in _files(cluster.cupsd.root / "spool")), 15,
             "cupsd to drop the document of the completed job")

    # Sealed is not lost: the job prints, with its options read back from the sealed metadata.
    assert release(cluster, token, {"jobs": [job["id"]]}).json()["results"][0]["status"] == "printed"
    assert received_hashes(printer).count(sha(data)) == 1
