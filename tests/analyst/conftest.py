"""Fixtures: every analyst test runs against SQLite (a temp file) and a throwaway PostgreSQL it starts itself.

The PostgreSQL runs as production does (docs/security.md): TLS only on TCP with a server certificate
from a test cluster CA (role ``database``), SCRAM-SHA-256 passwords, no trust and no plain ``host``
lines in pg_hba.conf. The analyst reaches it as role ``analyst`` with ``sslmode=verify-full`` and its
password given apart from the URL (``db_password``).
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from analyst.app import create_app
from analyst.config import AnalystConfig
from analyst.db import upgrade
from analyst.web import EXTENSION
from pullprint import config as pullprint_config
from pullprint.daemons import free_port, require
from pullprint.pki import Authority
from tests.identities import as_node

# The analyst role's and the superuser's passwords on the test PostgreSQL (SCRAM; never in a URL).
PG_PASSWORD = secrets.token_urlsafe(24)
PG_ADMIN_PASSWORD = secrets.token_urlsafe(24)
PEPPER = "test-badge-pepper"
# The PrinterDict fields added after the first version, at their defaults.
PRINTER_ADDITIONS = {"building": "", "floor": "", "room": "", "capabilities": [], "service_reason": "",
                     "snmp_v3_user": "", "snmp_v3_auth_protocol": "", "snmp_v3_auth_key": "",
                     "snmp_v3_priv_protocol": "", "snmp_v3_priv_key": "", "status": None,
                     "document_filter": "strip", "languages": ["pdf", "postscript", "pcl", "text"],
                     "direct_mail": False}


class PostgresServer:
    """A private PostgreSQL cluster in a temp folder, on a free loopback port, owned by the postgres user."""

    def __init__(self) -> None:
        try:
            self.paths = require("initdb", "pg_ctl")
        except Exception as exc:  # a clear failure, never a skip: these tests must run on PostgreSQL
            pytest.fail(f"PostgreSQL is needed for the analyst tests: {exc}", pytrace=False)
        self.dir = Path(tempfile.mkdtemp(prefix="pullprint-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._template: str | None = None
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root.
            if shutil.which("runuser") is None:
                pytest.fail("running as root needs runuser (util-linux) to start PostgreSQL as postgres",
                            pytrace=False)
            try:
                shutil.chown(self.dir, "postgres", "postgres")
            except (LookupError, OSError) as exc:
                pytest.fail(f"running as root needs the postgres OS user (apt-get install postgresql): {exc}",
                            pytrace=False)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self._as_postgres, *argv], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(argv[:2])} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)

    def start(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(PG_ADMIN_PASSWORD + "\n")
        self._own(pwfile)
        self._run(self.paths["initdb"], "-D", str(self.data), "-U", "postgres", "-A", "scram-sha-256",
                  f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8", "--locale", "C")
        pwfile.unlink()
        authority = Authority(self.dir / "ca")
        authority.init()
        self.ca_file = authority.cert_file
        cert, key = authority.issue("database", "postgres", ["127.0.0.1"], out_dir=self.dir / "tls")
        for path in (self.dir / "tls", cert, key):
            self._own(path)
        # TCP only over TLS, every login by SCRAM password; nothing trusted, no plain host lines.
        hba = self.data / "pg_hba.conf"
        hba.write_text("local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        self._own(hba)
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                   f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key} -c ssl_min_protocol_version=TLSv1.2 "
                   "-c password_encryption=scram-sha-256")
        self._run(self.paths["pg_ctl"], "-D", str(self.data), "-o", options, "-l", str(self.dir / "postgres.log"),
                  "-w", "-t", "60", "start")

        self._admin(f"CREATE ROLE analyst LOGIN PASSWORD '{PG_PASSWORD}'")

    def _own(self, path: Path) -> None:
        if self._as_postgres:
            shutil.chown(path, "postgres", "postgres")

    def tls_query(self) -> str:
        """How the analyst checks the server: the full certificate check against the test CA."""
        return f"sslmode=verify-full&sslrootcert={self.ca_file}"

    def stop(self) -> None:
        subprocess.run([*self._as_postgres, self.paths["pg_ctl"], "-D", str(self.data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             password=PG_ADMIN_PASSWORD, sslmode="verify-full", sslrootcert=str(self.ca_file),
                             autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self) -> str:
        """A fresh database with the analyst schema (copied from a template migrated once); its URL."""
        if self._template is None:
            self._admin('CREATE DATABASE "analyst_template" OWNER analyst')
            self._template = f"postgresql+psycopg://analyst@127.0.0.1:{self.port}/analyst_template?{self.tls_query()}"
            upgrade(self._template, PG_PASSWORD)
        name = f"analyst_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "analyst_template" OWNER analyst')
        return f"postgresql+psycopg://analyst@127.0.0.1:{self.port}/{name}?{self.tls_query()}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analyst.db'}"
    return request.getfixturevalue("postgres_server").new_database()


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_config(db_url: str, **overrides: Any) -> AnalystConfig:
    settings = {"db_url": db_url, "badge_pepper": PEPPER, "db_password": PG_PASSWORD, **overrides}
    return pullprint_config.load(AnalystConfig, "analyst", environ={}, overrides=settings)


@pytest.fixture
def config(db_url: str) -> AnalystConfig:
    return make_config(db_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(config: AnalystConfig, clock: Clock) -> Iterator[Flask]:
    app = create_app(config)
    app.extensions[EXTENSION].clock = clock
    yield app
    app.extensions[EXTENSION].db.dispose()


class Api:
    """The test client calling /api/v1 as one node: the operator (admin) unless `role`/`name` say otherwise."""

    def __init__(self, client: FlaskClient, role: str = "admin", name: str = "operator") -> None:
        self.client = client
        self.environ = as_node(role, name)

    def as_(self, role: str, name: str) -> Api:
        """The same client calling as another node."""
        return Api(self.client, role, name)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(path: str, **kwargs: Any) -> Any:
            environ = {**self.environ, **kwargs.pop("environ_base", {})}
            return getattr(self.client, method)(f"/api/v1{path}", environ_base=environ, **kwargs)
        return call


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def job_body(job_id: str = "job1", owner: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"id": job_id, "owner": owner, "title": "report.pdf", "size": 12345, "sha256": "ab" * 32,
            "pages": 3, "copies": 1, "options": {"sides": "two-sided-long-edge"},
            "content_type": "application/pdf", "origin_host": "ws12", "cups_job_id": "17",
            "idempotency_key": f"urn:uuid:{job_id}", "site": "main", "received_by": "c1",
            "locations": ["c1", "c2"]}
    body.update(fields)
    return body
