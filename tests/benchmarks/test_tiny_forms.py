"""Every benchmark runs: each one in a tiny form, against the real programs, writing its JSON.

Benchmarks are not timed tests: nothing here checks a speed. What is checked is what a reader of the
results relies on: the run ends, every job it sent is counted on both sides (pullprint and plain CUPS),
and the numbers the prose in docs/sizing.md quotes are in the JSON, as numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(script: str, *args: str, out: Path, timeout: float = 600) -> dict:
    answer = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert answer.returncode == 0, answer.stderr[-3000:]
    return json.loads(out.read_text())


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_concurrency_sweep_and_its_chart(tmp_path: Path) -> None:
    """submit_release.py's submit-release scenario at two concurrency levels, then the chart from the JSON."""
    result = bench("concurrency.py", "--submitters", "1", "2", "--jobs", "6", "--lp-jobs", "2", "--size", "20000",
                   out=tmp_path / "concurrency.json")
    assert [level["submitters"] for level in result["levels"]] == [1, 2]
    for level in result["levels"]:
        for system in ("cups", "cups_crash_safe", "pullprint_http", "pullprint_lp"):
            assert positive(level[system]["jobs_per_s"]), (system, level)
        assert positive(level["ratios"]["http"]) and positive(level["ratios"]["lp"])
        assert positive(level["ratios"]["http_vs_crash_safe"])
    svg = tmp_path / "chart.svg"
    drawn = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plot_concurrency.py"),
                            "--json", str(tmp_path / "concurrency.json"), "--out", str(svg)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert drawn.returncode == 0, drawn.stderr
    text = svg.read_text()
    assert text.startswith("<svg") and text.count('<path d="M') == 8  # a line per system in each panel
    assert "plain CUPS" in text and "pullprint" in text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_registry_at_scale_in_small(tmp_path: Path, backend: str) -> None:
    result = bench("registry_scale.py", "--jobs", "3000", "--users", "150", "--samples", "20",
                   "--backends", backend, out=tmp_path / "registry.json")
    measured = result["backends"][backend]
    assert measured["sweep"]["expired"] == 300  # a tenth of the filled jobs were due
    assert measured["listing"]["count"] == 20 and measured["listing"]["jobs_listed_mean"] == 20.0
    assert measured["reconcile_lookup_500"]["jobs_found"] == 500 * measured["reconcile_lookup_500"]["count"]
    for name in ("listing", "registration", "repair_add_location", "listing_during_sweep"):
        assert positive(measured[name]["p99_ms"]), name
    assert measured["db_bytes_filled"] > 3000 * 200  # the rows are really there


def test_release_fanout(tmp_path: Path) -> None:
    result = bench("release_fanout.py", "--printers", "2", "--jobs-per-printer", "1", out=tmp_path / "fanout.json")
    assert result["printers"] == 2 and result["jobs_per_printer"] == 1
    assert positive(result["pullprint_over_floor"]) and positive(result["pullprint_over_plain_cups"])


def test_backend_start(tmp_path: Path) -> None:
    result = bench("backend_start.py", "--runs", "2", out=tmp_path / "start.json")
    variant = result["variants"]["this tree"]
    assert variant["start"]["cpu_ms"]["runs"] == 2 and variant["job"]["wall_ms"]["runs"] == 2
    assert positive(variant["job"]["cpu_ms"]["p50"])


def test_snmp_fleet_cycle(tmp_path: Path) -> None:
    result = bench("snmp_poll.py", "--printers", "20", "--sample", "2", out=tmp_path / "snmp.json")
    assert result["printers"] == 20
    for cycle in ("status_cycle", "full_cycle_with_supplies"):
        assert (result[cycle]["reachable"], result[cycle]["unreachable"]) == (18, 2), cycle


@pytest.mark.parametrize("what", ["login", "release"])
def test_request_profile(tmp_path: Path, what: str) -> None:
    """profile_requests.py: CPU per login or release by process, and py-spy's samples summed for the
    collectors and the analyst (a release's latency runs to its last byte at the printer)."""
    result = bench("profile_requests.py", "--what", what, "--count", "20", out=tmp_path / f"profile_{what}.json")
    assert result["operation"] == what
    assert result["latency_s"]["count"] == 20 and positive(result["latency_s"]["p50_ms"])
    assert positive(result["server_cpu_ms_per_operation"])
    assert positive(result["server_cpu_ms_per_operation_by_process"]["collector"])
    assert positive(result["server_cpu_ms_per_operation_by_process"]["analyst"])
    for who in ("collector", "analyst"):
        profile = result["profile"][who]
        assert positive(profile["samples"]), who
        assert abs(sum(profile["by_category_pct"].values()) - 100) < 1, profile
