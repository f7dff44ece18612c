"""Schema upgrades keep what an older analyst stored: revision 0002 on a database filled at 0001."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from analyst.app import create_app
from analyst.db import _alembic_config, head_revision, make_engine, upgrade
from analyst.web import EXTENSION
from tests.analyst.conftest import PG_PASSWORD, Api, make_config


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    server = request.getfixturevalue("postgres_server")
    name = f"old_{uuid.uuid4().hex[:8]}"
    server._admin(f'CREATE DATABASE "{name}" OWNER analyst')
    return f"postgresql+psycopg://analyst@127.0.0.1:{server.port}/{name}?{server.tls_query()}"


def test_upgrade_from_0001_keeps_and_completes_accounting(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url, PG_PASSWORD)
    try:
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO jobs (id, owner, title, size, sha256, pages, copies, options, content_type, origin_host,"
                " cups_job_id, site, state, state_reason, submitted_at, expires_at, received_by, claim_token,"
                " updated_at) VALUES ('j1', 'alice', 't', 1, '', 3, 2, :options, 'application/pdf', '', '', 'main',"
                " 'printed', '', :at, :at, 'c1', 1, :at)"),
                {"options": '{"sides": "two-sided-long-edge", "print-color-mode": "color"}',
                 "at": "2026-11-20 10:00:00"})
            connection.execute(text(
                "INSERT INTO prints (job_id, user_name, printer_id, collector_id, site, pages, copies, printed_at)"
                " VALUES ('j1', 'alice', 'p1', 'c1', 'main', 3, 2, :at),"
                " ('gone', 'bob', 'p1', 'c1', 'main', NULL, 1, :at)"), {"at": "2026-11-20 10:00:00"})
            connection.execute(text(
                "INSERT INTO printers (id, uri, snmp_host, snmp_port, snmp_version, snmp_community, site, location,"
                " tags, in_service, unreachable_policy, created_at, updated_at) VALUES ('p1', 'socket://h:9100', '',"
                " 161, '2c', 'public', 'main', 'Room 1', :tags, :yes, 'allow', :at, :at)"),
                {"tags": '["a3"]', "yes": True, "at": "2026-11-20 10:00:00"})
    finally:
        engine.dispose()

    upgrade(empty_db_url, PG_PASSWORD)
    app = create_app(make_config(empty_db_url))
    try:
        assert app.extensions[EXTENSION].db.schema_revision() == head_revision()
        api = Api(app.test_client())
        rows = {r["key"]: r for r in api.get("/reports/pages?by=user").json["rows"]}
        assert rows["alice"] == {"key": "alice", "jobs": 1, "pages": 3, "unknown_page_jobs": 0, "copies": 2,
                                 "impressions": 6, "sheets": 4, "duplex_jobs": 1, "color_jobs": 1}
        assert (rows["bob"]["jobs"], rows["bob"]["pages"], rows["bob"]["unknown_page_jobs"]) == (1, 0, 1)
        printer = api.get("/printers/p1").json["printer"]
        assert (printer["location"], printer["tags"], printer["building"], printer["capabilities"],
                printer["status"], printer["snmp_v3_auth_key"]) == ("Room 1", ["a3"], "", [], None, "")
        assert api.get("/events?offline=false").status_code == 200
    finally:
        app.extensions[EXTENSION].db.dispose()
