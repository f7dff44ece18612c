"""The `pullprint user`, `pullprint printer` and `pullprint analyst` commands."""

from __future__ import annotations

import io
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from analyst.app import create_app
from analyst.cli import gunicorn_argv, gunicorn_env, printer_main, user_main
from pullprint import cli as pullprint_cli
from pullprint.daemons import free_port, start
from tests.analyst.conftest import PEPPER, PRINTER_ADDITIONS, TOKEN, Api, make_config


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The way an operator hands the CLI its secrets: files named in the environment.
    (tmp_path / "pepper").write_text(PEPPER)
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.delenv("PULLPRINT_CONFIG", raising=False)


def run_user(*argv: str, stdin: str = "") -> str:
    out = io.StringIO()
    assert user_main(list(argv), stdin=io.StringIO(stdin), out=out) == 0
    return out.getvalue()


def test_user_added_on_the_cli_can_log_in(cli_env: None, db_url: str) -> None:
    assert "added user alice (badge: yes, PIN: yes)" in run_user(
        "add", "alice", "--badge-stdin", "--pin-stdin", "--email", "alice@example.org", "--db-url", db_url,
        stdin="0012345678\n4321\n")
    assert "updated user alice" in run_user("add", "alice", "--email", "a@example.org", "--db-url", db_url)
    run_user("add", "bob", "--badge", "777", "--db-url", db_url)
    listing = run_user("list", "--db-url", db_url)
    assert listing.splitlines() == ["alice\tbadge=yes\tpin=yes\ta@example.org", "bob\tbadge=yes\tpin=no\t"]

    app = create_app(make_config(db_url))
    try:
        api = Api(app.test_client())
        assert api.post("/auth", json={"user": "alice", "pin": "4321"}).json == {"user": "alice"}
        assert api.post("/auth", json={"badge": "0012345678"}).json == {"user": "alice"}
        assert api.post("/auth", json={"badge": "777"}).json == {"user": "bob"}
        assert "removed user bob" in run_user("remove", "bob", "--db-url", db_url)
        assert api.post("/auth", json={"badge": "777"}).status_code == 401
    finally:
        app.extensions["pullprint.analyst"].db.dispose()


def test_user_cli_errors(cli_env: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    from pullprint.errors import PullprintError

    with pytest.raises(PullprintError, match="no user"):
        run_user("remove", "ghost", "--db-url", url)
    with pytest.raises(PullprintError, match="pin must be"):
        run_user("add", "alice", "--pin-stdin", "--db-url", url, stdin="12\n")
    # Through the top-level command, an error is one line and exit code 1.
    assert pullprint_cli.main(["user", "remove", "ghost", "--db-url", url]) == 1


def test_printer_cli(cli_env: None, db_url: str) -> None:
    out = io.StringIO()
    assert printer_main(["add", "p1", "--uri", "socket://10.1.2.3:9100", "--snmp", "10.1.2.3:1161",
                         "--snmp-community", "private", "--snmp-version", "2c", "--site", "north",
                         "--location", "Building A, room 210", "--tag", "color", "--tag", "a3", "duplex",
                         "--unreachable-policy", "refuse", "--db-url", db_url], out=out) == 0
    assert "added printer p1" in out.getvalue()
    app = create_app(make_config(db_url))
    try:
        printer = Api(app.test_client()).get("/printers/p1").json["printer"]
        assert printer == {"id": "p1", "uri": "socket://10.1.2.3:9100", "snmp_host": "10.1.2.3",
                           "snmp_port": 1161, "snmp_version": "2c", "snmp_community": "private",
                           "site": "north", "location": "Building A, room 210",
                           "tags": ["color", "a3", "duplex"], "in_service": True, "unreachable_policy": "refuse",
                           **PRINTER_ADDITIONS}
        out = io.StringIO()
        printer_main(["list", "--db-url", db_url], out=out)
        assert out.getvalue().startswith("p1\tsocket://10.1.2.3:9100\tsnmp=10.1.2.3:1161\tsite=north")
        printer_main(["remove", "p1", "--db-url", db_url], out=io.StringIO())
        assert Api(app.test_client()).get("/printers").json["printers"] == []
    finally:
        app.extensions["pullprint.analyst"].db.dispose()


def test_printer_cli_checks_like_the_api(cli_env: None, tmp_path: Path) -> None:
    from pullprint.errors import PullprintError

    with pytest.raises(PullprintError, match="uri"):
        printer_main(["add", "p1", "--uri", "nonsense", "--db-url", f"sqlite:///{tmp_path}/a.db"])


def test_config_file_is_read(cli_env: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/from-file.db"
    (tmp_path / "pullprint.json").write_text(json.dumps({"analyst": {"db_url": url}}))
    run_user("add", "carol", "--config", str(tmp_path / "pullprint.json"))
    assert (tmp_path / "from-file.db").exists()
    assert run_user("list", "--db-url", url).startswith("carol")


def test_gunicorn_command_and_environment() -> None:
    config = make_config("sqlite:////var/lib/pullprint/analyst.db", bind="0.0.0.0:8700", workers=4)
    argv = gunicorn_argv(config)
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert argv[argv.index("--worker-class") + 1] == "gthread"
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8700"
    assert argv[-1] == "analyst.app:create_app()"
    env = gunicorn_env(config, "conf.json", environ={"PATH": "/usr/bin"})
    assert env["PULLPRINT_ANALYST_DB_URL"] == "sqlite:////var/lib/pullprint/analyst.db"
    assert env["PULLPRINT_ANALYST_WORKERS"] == "4"
    assert env["PULLPRINT_ANALYST_AUTO_MIGRATE"] == "0"
    assert env["PULLPRINT_CONFIG"] == os.path.abspath("conf.json")
    assert TOKEN not in json.dumps(env)  # secrets are never copied into the environment


def test_pullprint_analyst_serves_under_gunicorn(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "pepper").write_text(PEPPER)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULLPRINT_")}
    env.update({"PULLPRINT_ANALYST_CLUSTER_TOKEN_FILE": str(tmp_path / "token"),
                "PULLPRINT_ANALYST_BADGE_PEPPER_FILE": str(tmp_path / "pepper")})
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    daemon = start("analyst", [sys.executable, "-m", "pullprint.cli", "analyst", "--bind", f"127.0.0.1:{port}",
                               "--workers", "2", "--db-url", f"sqlite:///{tmp_path}/analyst.db"],
                   log_path=tmp_path / "analyst.log", env=env, cwd=tmp_path, ready=healthy, timeout=30)
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:
            assert json.load(answer) == {"status": "ready"}
        request = urllib.request.Request(
            f"{base}/api/v1/jobs", data=json.dumps({"id": "j1", "owner": "alice"}).encode(), method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 201
        for _ in range(4):  # whichever worker answers sees the same database
            get = urllib.request.Request(f"{base}/api/v1/jobs/j1", headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(get, timeout=5) as answer:
                assert json.load(answer)["job"]["state"] == "held"
    finally:
        daemon.stop()
    log = (tmp_path / "analyst.log").read_text()
    assert "gthread" in log or "Booting worker" in log
