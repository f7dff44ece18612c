"""Short CI form of the fault suite: ≥ 20 collector kills, plus analyst and Redis kills and cut, blackholed
or delayed analyst and Redis links, under load.

The long form is one command (docs/guarantees.md):
    .venv/bin/python -m tests.faults.run --kills 200 --jobs 20000 --out benchmarks/results/faults_long.json
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults.run import run

pytestmark = pytest.mark.e2e

KILLS = 20


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("faults") / "faults_short.json"
    # The run ends after KILLS kills; max_minutes only bounds a machine too loaded to get there.
    answer = run(kills=KILLS, jobs=300, out=out, submitters=2, terminals=3, max_minutes=6.0, pause=0.3,
                 other_every=4, log=lambda line: print(line, flush=True))
    summary = {k: answer.get(k) for k in ("jobs_acknowledged", "printed", "lost", "duplicated", "phantom",
                                         "double_acknowledged", "interrupted_user_decides", "stuck_held",
                                         "terminal_5xx", "login_during_faults", "faults", "state_dir")}
    print(json.dumps(summary, indent=2))
    assert answer["faults"]["collector_kills"] >= KILLS, summary
    assert answer["jobs_acknowledged"] > 100 and answer["printed"] > 100, summary
    return answer


def _details(report: dict[str, Any]) -> str:
    return json.dumps(report.get("details", {}), indent=1)[:6000]


def test_no_acknowledged_job_is_lost_under_faults(report: dict[str, Any]) -> None:
    assert report["lost"] == 0, _details(report)


def test_nothing_is_printed_that_was_never_acknowledged(report: dict[str, Any]) -> None:
    assert report["phantom"] == 0, _details(report)
    assert report["double_acknowledged"] == 0, _details(report)


def test_no_job_is_printed_twice_under_faults(report: dict[str, Any]) -> None:
    assert report["duplicated"] == 0, _details(report)


def test_every_whole_print_is_the_document_submitted(report: dict[str, Any]) -> None:
    # A print cut short by a killed sender counts as partial (its job was interrupted); one of the
    # job's full length with other bytes would be a corrupt spool or a mixed-up job.
    assert report["corrupt_deliveries"] == 0, _details(report)
