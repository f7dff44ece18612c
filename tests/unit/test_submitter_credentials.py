"""The collector's check of a submitting host's credential: the synced digests, then the analyst for one it
lacks (no network: a fake analyst)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from collector import directory
from collector.analyst_client import AnalystUnavailable
from collector.directory import DirectoryCache
from pullprint.errors import Unavailable


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class FakeAnalyst:
    def __init__(self) -> None:
        self.hosts: dict[str, str] = {}
        self.away = False
        self.syncs = 0
        self.asked: list[str] = []

    def sync(self) -> dict[str, Any]:
        self.syncs += 1
        if self.away:
            raise AnalystUnavailable("analyst-unreachable", "away")
        return {"users": [], "printers": [], "terminals": [],
                "submitters": [{"host": h, "token_hash": digest(t)} for h, t in self.hosts.items()]}

    def credential(self, section: str, token_hash: str) -> dict[str, Any] | None:
        assert section == "submitters"
        self.asked.append(token_hash)
        if self.away:
            raise AnalystUnavailable("analyst-unreachable", "away")
        return next(({"host": h} for h, t in self.hosts.items() if digest(t) == token_hash), None)


@pytest.fixture
def analyst() -> FakeAnalyst:
    return FakeAnalyst()


def cache(analyst: FakeAnalyst, tmp_path: Path) -> DirectoryCache:
    return DirectoryCache(analyst, tmp_path / "directory.json", "pepper")  # type: ignore[arg-type]


def test_a_host_is_known_by_its_own_token_and_a_revoked_one_is_not(analyst: FakeAnalyst, tmp_path: Path) -> None:
    analyst.hosts = {"ps1": "token-one", "ps2": "token-two"}
    found = cache(analyst, tmp_path)
    assert found.refresh()
    assert found.submitter("Bearer token-one") == "ps1"
    assert found.submitter("Bearer token-two") == "ps2"
    assert analyst.asked == []  # both in the synced directory: the analyst is not asked
    for bad in (None, "", "token-one", "Basic dG9rZW4tb25l", "Bearer token-on", "Bearer " + "x" * 600):
        assert found.submitter(bad) is None, bad
    del analyst.hosts["ps1"]  # revoked
    assert found.refresh()
    assert found.submitter("Bearer token-one") is None
    assert found.submitter("Bearer token-two") == "ps2"


def test_a_host_issued_after_the_sync_is_taken_at_once_and_kept_until_the_next_sync(
        analyst: FakeAnalyst, tmp_path: Path) -> None:
    found = cache(analyst, tmp_path)
    assert found.refresh()
    analyst.hosts["ws9"] = "fresh"
    assert found.submitter("Bearer fresh") == "ws9"
    assert found.submitter("Bearer fresh") == "ws9"
    assert analyst.asked == [digest("fresh")] and analyst.syncs == 1  # asked once, no early full sync
    del analyst.hosts["ws9"]  # revoked: what the analyst said stands only until the next sync
    assert found.refresh()
    assert found.submitter("Bearer fresh") is None


def test_guesses_cost_one_ask_each_at_most_and_a_burst_of_them_waits(
        analyst: FakeAnalyst, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "ASKS_PER_SECOND", 5)
    found = cache(analyst, tmp_path)
    assert found.refresh()
    for _ in range(10):  # the same wrong token again and again: asked once, refused every time
        assert found.submitter("Bearer guess") is None
    assert analyst.asked == [digest("guess")]
    refused, busy = 0, 0
    for n in range(20):
        try:
            refused += found.submitter(f"Bearer guess-{n}") is None
        except Unavailable as exc:
            assert exc.status == 503 and exc.code == "credential-check-busy"
            busy += 1
    assert len(analyst.asked) <= 5 * 2  # this second's budget and, at most, the next one's
    assert refused == len(analyst.asked) - 1 and busy == 20 - refused
    assert found.submitter("Bearer guess") is None  # a refusal already known needs no budget


def test_with_the_analyst_away_the_persisted_directory_answers_and_a_new_token_waits(
        analyst: FakeAnalyst, tmp_path: Path) -> None:
    analyst.hosts = {"ps1": "token-one"}
    assert cache(analyst, tmp_path).refresh()
    analyst.away = True
    restarted = cache(analyst, tmp_path)  # a new process: only the file on disk
    assert restarted.submitter("Bearer token-one") == "ps1"
    # Perhaps issued since the last sync: not refused (401 would hold the job on the print server), retried.
    with pytest.raises(Unavailable) as raised:
        restarted.submitter("Bearer other")
    assert raised.value.status == 503 and raised.value.code == "analyst-unreachable"
    analyst.away = False
    analyst.hosts["ws2"] = "other"
    assert restarted.submitter("Bearer other") == "ws2"  # back: asked again at once (no refusal was remembered)


def test_before_any_sync_the_submit_is_retried_not_refused(analyst: FakeAnalyst, tmp_path: Path) -> None:
    analyst.away = True
    with pytest.raises(Unavailable) as raised:
        cache(analyst, tmp_path).submitter("Bearer token-one")
    assert raised.value.status == 503 and raised.value.code == "directory-not-synced"
