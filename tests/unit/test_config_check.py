"""`--check-config`: the one config loader says what is wrong with a service's settings, or OK, and starts nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyst.config import AnalystConfig
from collector.config import CollectorConfig
from pullprint import config

KEY = "ab" * 32


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, str]:
    """The collector's secrets as files, named the way its systemd unit names them."""
    files = {}
    for name, value in (("installation_key", KEY), ("session_key", "session"), ("badge_pepper", "pepper"),
                        ("redis_password", "redis-pw")):
        (tmp_path / name).write_text(value + "\n")
        files[f"PULLPRINT_COLLECTOR_{name.upper()}_FILE"] = str(tmp_path / name)
    for name in ("ca_file", "cert_file", "key_file"):  # the node's TLS files (their content is gunicorn's to judge)
        (tmp_path / name).write_text("PEM\n")
        files[f"PULLPRINT_COLLECTOR_{name.upper()}"] = str(tmp_path / name)
    return files


def test_good_settings_have_no_problems(tmp_path: Path, secrets: dict[str, str]) -> None:
    path = _write(tmp_path / "collector.json", {"collector": {
        "id": "c1", "bind": "0.0.0.0:8801", "public_url": "https://10.0.10.21:8801", "replicas": 2,
        "analyst_url": "https://10.0.10.10:8700", "redis_url": "rediss://10.0.10.10:6379/0",
        "job_lifetime_hours": 8, "release_mode": "pull", "workers": "2"}})
    assert config.check(CollectorConfig, "collector", path=path, environ=secrets) == []


def test_every_problem_is_named_at_once(tmp_path: Path, secrets: dict[str, str]) -> None:
    path = _write(tmp_path / "collector.json", {"collector": {
        "replicaz": 2, "replicas": True, "threads": 2.5, "site": ["a"], "job_lifetime_hours": "eight",
        "analyst_url": "10.0.10.10:8700", "redis_url": "http://10.0.10.10", "bind": "0.0.0.0",
        "release_mode": "pul", "spool_dir": None}})
    environ = {**secrets, "PULLPRINT_COLLECTOR_SESSION_KEY_FILE": str(tmp_path / "missing"),
               "PULLPRINT_COLLECTOR_SESSION_KY_FILE": secrets["PULLPRINT_COLLECTOR_SESSION_KEY_FILE"],
               "PULLPRINT_COLLECTOR_MAX_JOB_BYTES": "lots"}
    problems = config.check(CollectorConfig, "collector", path=path, environ=environ)
    assert problems == [
        "collector.replicaz: unknown setting (did you mean replicas?)",
        "collector.replicas: expected a number, got true",
        "collector.threads: expected a whole number, got 2.5",
        'collector.site: expected text, got ["a"]',
        "collector.job_lifetime_hours: expected a number, got 'eight'",
        "collector.spool_dir: must not be null",
        f"PULLPRINT_COLLECTOR_SESSION_KEY_FILE: cannot read {tmp_path / 'missing'}: "
        f"[Errno 2] No such file or directory: '{tmp_path / 'missing'}'",
        "PULLPRINT_COLLECTOR_SESSION_KY_FILE: unknown setting (did you mean PULLPRINT_COLLECTOR_SESSION_KEY_FILE?)",
        "collector.max_job_bytes: expected a number, got 'lots'",
        # …and what the collector itself needs, judged on the settings built from everything else.
        "collector.session_key is not set (give it as a file: PULLPRINT_COLLECTOR_SESSION_KEY_FILE)",
        "collector.bind: expected HOST:PORT, got '0.0.0.0'",
        "collector.analyst_url: expected a URL with scheme http or https, got '10.0.10.10:8700'",
        "collector.redis_url: expected a URL with scheme redis or rediss or unix, got 'http://10.0.10.10'",
        "collector.redis_url: expected rediss:// (Redis over TLS), or set collector.insecure_plain_http",
        "collector.release_mode: expected one of direct, pull, got 'pul'",
    ]


def test_unreadable_file_and_missing_section(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert config.check(CollectorConfig, "collector", path=missing, environ={})[0].startswith(
        f"cannot read config file {missing}: ")
    other = _write(tmp_path / "analyst.json", {"analyst": {}})
    assert config.check(CollectorConfig, "collector", path=other, environ={})[0] == (
        f"{other}: no 'collector' section (a JSON object of settings)")


def test_analyst_settings(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t\n")
    environ = {"PULLPRINT_ANALYST_BADGE_PEPPER_FILE": str(tmp_path / "token"),
               **{f"PULLPRINT_ANALYST_{name}": str(tmp_path / "token")
                  for name in ("CA_FILE", "CERT_FILE", "KEY_FILE")}}
    good = _write(tmp_path / "good.json", {"analyst": {"bind": "0.0.0.0:8700", "log_level": "INFO",
                                                       "db_url": "postgresql://pullprint@db/pullprint?sslmode=verify-full"}})
    assert config.check(AnalystConfig, "analyst", path=good, environ=environ) == []
    bad = _write(tmp_path / "bad.json", {"analyst": {"db_url": "mysql://db/pullprint", "log_level": "loud",
                                                     "console_password_hash": "secret"}})
    assert config.check(AnalystConfig, "analyst", path=bad, environ={}) == [
        "analyst.badge_pepper is not set (give it as a file: PULLPRINT_ANALYST_BADGE_PEPPER_FILE)",
        *(f"analyst.{name} is not set (the cluster CA, this node's certificate and key; see `pullprint ca`), "
          "or set analyst.insecure_plain_http" for name in ("ca_file", "cert_file", "key_file")),
        "analyst.db_url: the analyst runs on SQLite or PostgreSQL, not mysql",
        "analyst.console_password_hash: not a scrypt$… hash (make one with pullprint.credentials.pin_hash)",
        "analyst.log_level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
    ]


def test_loading_is_as_lenient_as_before(tmp_path: Path) -> None:
    """`check` is stricter than `load`, which still takes what it always took."""
    path = _write(tmp_path / "c.json", {"collector": {"replicaz": 2, "replicas": "3", "threads": 2.0}})
    loaded = config.load(CollectorConfig, "collector", path=path, environ={"PULLPRINT_COLLECTOR_NOPE": "x"})
    assert (loaded.replicas, loaded.threads) == (3, 2)


def test_collector_check_config_starts_nothing(tmp_path: Path, secrets: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                               ) -> None:
    from collector.cli import main

    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    spool = tmp_path / "spool"
    path = _write(tmp_path / "collector.json", {"collector": {"spool_dir": str(spool),
                                                              "redis_url": "rediss://10.0.10.10:6379/0"}})
    assert main(["--check-config", "--config", str(path)]) == 0
    assert capsys.readouterr().out == "OK\n"
    assert main(["--check-config", "--config", str(path), "--analyst-url", "analyst:8700"]) == 1
    assert capsys.readouterr().err == (
        f"collector settings ({path}) are not usable:\n"
        "  collector.analyst_url: expected a URL with scheme http or https, got 'analyst:8700'\n")
    assert not spool.exists()


def test_analyst_check_config_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from analyst.cli import main

    (tmp_path / "token").write_text("t\n")
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("PULLPRINT_ANALYST_INSECURE_PLAIN_HTTP", "1")
    database = tmp_path / "analyst.db"
    path = _write(tmp_path / "analyst.json", {"analyst": {"db_url": f"sqlite:///{database}"}})
    assert main(["--check-config", "--config", str(path)]) == 0
    assert capsys.readouterr().out == "OK\n"
    assert main(["--check-config", "--config", str(path), "--bind", "8700"]) == 1
    assert "analyst.bind: expected HOST:PORT, got '8700'" in capsys.readouterr().err
    assert not database.exists()  # no migration, no engine, no gunicorn
