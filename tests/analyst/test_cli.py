"""The `pullprint user`, `pullprint printer` and `pullprint analyst` commands."""

from __future__ import annotations

import http.client
import io
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from analyst.app import create_app
from analyst.cli import gunicorn_argv, gunicorn_env, printer_main, user_main
from pullprint import cli as pullprint_cli
from pullprint.daemons import free_port, start
from pullprint.pki import Authority
from tests.analyst.conftest import PEPPER, PG_PASSWORD, PRINTER_ADDITIONS, Api, make_config


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The way an operator hands the CLI its secrets: files named in the environment.
    (tmp_path / "pepper").write_text(PEPPER)
    monkeypatch.setenv("PULLPRINT_ANALYST_BADGE_PEPPER_FILE", str(tmp_path / "pepper"))
    (tmp_path / "db_password").write_text(PG_PASSWORD)  # the test PostgreSQL's (SCRAM, never in the URL)
    monkeypatch.setenv("PULLPRINT_ANALYST_DB_PASSWORD_FILE", str(tmp_path / "db_password"))
    monkeypatch.delenv("PULLPRINT_CONFIG", raising=False)


def run_user(*argv: str, stdin: str = "") -> str:
    out = io.StringIO()
    assert user_main(list(argv), stdin=io.StringIO(stdin), out=out) == 0
    return out.getvalue()


def test_user_added_on_the_cli_can_log_in(cli_env: None, db_url: str) -> None:
    assert "added user alice (badge: yes, PIN: yes)" in run_user(
        "add", "alice", "--badge-stdin", "--pin-stdin", "--email", "alice@example.org", "--db-url", db_url,
        stdin="0012345678\n472913\n")
    assert "updated user alice" in run_user("add", "alice", "--email", "a@example.org", "--db-url", db_url)
    run_user("add", "bob", "--badge", "777", "--db-url", db_url)
    listing = run_user("list", "--db-url", db_url)
    assert listing.splitlines() == ["alice\tbadge=yes\tpin=yes\ta@example.org", "bob\tbadge=yes\tpin=no\t"]

    app = create_app(make_config(db_url))
    try:
        api = Api(app.test_client())
        assert api.post("/auth", json={"user": "alice", "pin": "472913"}).json == {"user": "alice"}
        assert api.post("/auth", json={"badge": "0012345678"}).json == {"user": "alice"}
        assert api.post("/auth", json={"badge": "777"}).json == {"user": "bob"}
        assert "removed user bob" in run_user("remove", "bob", "--db-url", db_url)
        assert api.post("/auth", json={"badge": "777"}).status_code == 401
        # Denied from the CLI: refused at the terminal, listed as such; allowed again.
        assert "DENIED" in run_user("add", "alice", "--deny", "--db-url", db_url)
        assert run_user("list", "--db-url", db_url).splitlines() == ["alice\tbadge=yes\tpin=yes\ta@example.org\tDENIED"]
        assert api.post("/auth", json={"badge": "0012345678"}).json["error"] == "user-denied"
        run_user("add", "alice", "--allow", "--db-url", db_url)
        assert api.post("/auth", json={"badge": "0012345678"}).json == {"user": "alice"}
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
    config = make_config("sqlite:////var/lib/pullprint/analyst.db", bind="0.0.0.0:8700", workers=4,
                         ca_file="/etc/pullprint/ca.pem", cert_file="/etc/pullprint/analyst.pem",
                         key_file="/etc/pullprint/analyst.key", crl_file="/etc/pullprint/crl.pem")
    argv = gunicorn_argv(config)
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert argv[argv.index("--config") + 1] == "python:nodeserver.gunicorn_conf"  # gthread worker, mTLS
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8700"
    # A certificate is checked when shown; the API refuses callers without one, the console takes a password.
    assert argv[argv.index("--cert-reqs") + 1] == "1"
    assert argv[argv.index("--ca-certs") + 1] == "/etc/pullprint/ca.pem"
    plain = gunicorn_argv(make_config("sqlite://", insecure_plain_http=True))
    assert "--certfile" not in plain
    assert argv[-1] == "analyst.app:create_app()"
    env = gunicorn_env(config, "conf.json", environ={"PATH": "/usr/bin"})
    assert env["PULLPRINT_ANALYST_DB_URL"] == "sqlite:////var/lib/pullprint/analyst.db"
    assert env["PULLPRINT_ANALYST_WORKERS"] == "4"
    assert env["PULLPRINT_ANALYST_AUTO_MIGRATE"] == "0"
    assert env["PULLPRINT_CONFIG"] == os.path.abspath("conf.json")
    assert env["PULLPRINT_TLS_CRL_FILE"] == "/etc/pullprint/crl.pem"
    assert PEPPER not in json.dumps(env)  # secrets are never copied into the environment


def test_pullprint_analyst_serves_mutual_tls_under_gunicorn_and_honours_a_revocation(tmp_path: Path) -> None:
    ca = Authority(tmp_path / "ca")
    ca.init()
    analyst_cert, analyst_key = ca.issue("analyst", "a1", ["127.0.0.1"])
    c1 = ca.issue("collector", "c1")
    c2 = ca.issue("collector", "c2")
    printer_host = ca.issue("print-server", "ps1")
    (tmp_path / "pepper").write_text(PEPPER)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULLPRINT_")}
    env.update({"PULLPRINT_ANALYST_BADGE_PEPPER_FILE": str(tmp_path / "pepper"),
                "PULLPRINT_ANALYST_CA_FILE": str(ca.cert_file), "PULLPRINT_ANALYST_CERT_FILE": str(analyst_cert),
                "PULLPRINT_ANALYST_KEY_FILE": str(analyst_key), "PULLPRINT_ANALYST_CRL_FILE": str(ca.crl_file)})
    base = f"https://127.0.0.1:{port}"

    def context(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
        made = ssl.create_default_context(cafile=str(ca.cert_file))
        if cert:
            made.load_cert_chain(*cert)
        return made

    def call(method: str, path: str, cert: tuple[Path, Path] | None, body: object = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5, context=context(cert)) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def healthy() -> bool:
        try:
            return call("GET", "/healthz", c1) == 200
        except OSError:
            return False

    daemon = start("analyst", [sys.executable, "-m", "pullprint.cli", "analyst", "--bind", f"127.0.0.1:{port}",
                               "--workers", "2", "--db-url", f"sqlite:///{tmp_path}/analyst.db"],
                   log_path=tmp_path / "analyst.log", env=env, cwd=tmp_path, ready=healthy, timeout=30)
    try:
        assert call("POST", "/api/v1/jobs", c1, {"id": "j1", "owner": "alice"}) == 201
        for _ in range(4):  # whichever worker answers sees the same database
            assert call("GET", "/api/v1/jobs/j1", c1) == 200
        assert call("GET", "/api/v1/jobs/j1", None) == 401  # no certificate: nobody
        other = Authority(tmp_path / "other-ca")
        other.init()
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            call("GET", "/api/v1/jobs/j1", other.issue("collector", "c1"))  # the right name, another CA
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)  # noqa: S310 - plain HTTP
        assert call("GET", "/api/v1/jobs/j1", printer_host) == 403  # a certificate, but not a collector's
        assert call("POST", "/api/v1/users", c1, {"name": "mallory", "badge": "123"}) == 403  # not an admin
        # Revoked: refused within a second or two (the workers re-read the CRL when it changes).
        ca.revoke(role="collector", name="c2")
        assert call("GET", "/api/v1/jobs/j1", c1) == 200
        deadline = time.monotonic() + 5
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                call("GET", "/api/v1/jobs/j1", c2)
                time.sleep(0.2)
            except (ssl.SSLError, urllib.error.URLError, ConnectionError):
                refused = True
        assert refused, "a revoked collector certificate was still accepted 5 s after the revocation"
    finally:
        daemon.stop()
    log = (tmp_path / "analyst.log").read_text()
    assert "gthread" in log or "Booting worker" in log
