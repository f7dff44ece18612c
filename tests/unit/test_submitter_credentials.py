"""The collector's check of a submitting host's credential against the synced digests (no network: a fake analyst)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from collector import directory
from collector.analyst_client import AnalystUnavailable
from collector.directory import DirectoryCache
from pullprint.errors import Unavailable


class FakeAnalyst:
    def __init__(self) -> None:
        self.hosts: dict[str, str] = {}
        self.away = False
        self.syncs = 0

    def sync(self) -> dict[str, Any]:
        self.syncs += 1
        if self.away:
            raise AnalystUnavailable("analyst-unreachable", "away")
        return {"users": [], "printers": [], "terminals": [],
                "submitters": [{"host": h, "token_hash": hashlib.sha256(t.encode()).hexdigest()}
                               for h, t in self.hosts.items()]}


@pytest.fixture
def analyst() -> FakeAnalyst:
    return FakeAnalyst()


def cache(analyst: FakeAnalyst, tmp_path: Path) -> DirectoryCache:
    return DirectoryCache(analyst, tmp_path / "directory.json", "pepper")  # type: ignore[arg-type]


def test_a_host_is_known_by_its_own_token_and_a_revoked_one_is_not(analyst: FakeAnalyst, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "SUBMITTER_RESYNC_SECONDS", 0.0)
    analyst.hosts = {"ps1": "token-one", "ps2": "token-two"}
    found = cache(analyst, tmp_path)
    assert found.refresh()
    assert found.submitter("Bearer token-one") == "ps1"
    assert found.submitter("Bearer token-two") == "ps2"
    for bad in (None, "", "token-one", "Basic dG9rZW4tb25l", "Bearer token-on", "Bearer " + "x" * 600):
        assert found.submitter(bad) is None, bad
    del analyst.hosts["ps1"]  # revoked
    assert found.refresh()
    assert found.submitter("Bearer token-one") is None
    assert found.submitter("Bearer token-two") == "ps2"


def test_a_new_host_is_known_before_the_next_periodic_sync_but_guesses_cost_few_syncs(
        analyst: FakeAnalyst, tmp_path: Path) -> None:
    found = cache(analyst, tmp_path)
    assert found.refresh()
    analyst.hosts["ws9"] = "fresh"
    before = analyst.syncs
    assert found.submitter("Bearer fresh") == "ws9"  # one early sync
    for guess in range(20):
        assert found.submitter(f"Bearer guess-{guess}") is None
    assert analyst.syncs - before == 1  # rate-limited: at most one early sync per SUBMITTER_RESYNC_SECONDS


def test_with_the_analyst_away_the_persisted_directory_answers(analyst: FakeAnalyst, tmp_path: Path) -> None:
    analyst.hosts = {"ps1": "token-one"}
    assert cache(analyst, tmp_path).refresh()
    analyst.away = True
    restarted = cache(analyst, tmp_path)  # a new process: only the file on disk
    assert restarted.submitter("Bearer token-one") == "ps1"
    assert restarted.submitter("Bearer other") is None


def test_before_any_sync_the_submit_is_retried_not_refused(analyst: FakeAnalyst, tmp_path: Path) -> None:
    analyst.away = True
    with pytest.raises(Unavailable) as raised:
        cache(analyst, tmp_path).submitter("Bearer token-one")
    assert raised.value.status == 503 and raised.value.code == "directory-not-synced"
