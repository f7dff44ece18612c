"""The analyst's PostgreSQL as production runs it: TLS only, SCRAM; plain TCP and a wrong password are refused."""

from __future__ import annotations

import psycopg
import pytest

from analyst.app import create_app
from analyst.config import AnalystConfig
from analyst.db import Database
from analyst.web import EXTENSION
from tests.analyst.conftest import PG_PASSWORD, make_config


def test_a_plain_connection_is_refused(postgres_server) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(host="127.0.0.1", port=postgres_server.port, user="analyst", dbname="postgres",
                        password=PG_PASSWORD, sslmode="disable", connect_timeout=5)


def test_a_wrong_or_missing_password_is_refused(postgres_server) -> None:
    for password in ("not-the-password", ""):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host="127.0.0.1", port=postgres_server.port, user="analyst", dbname="postgres",
                            password=password, sslmode="verify-full", sslrootcert=str(postgres_server.ca_file),
                            connect_timeout=5)


def test_the_password_is_stored_as_a_scram_verifier(postgres_server) -> None:
    with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user="analyst", dbname="postgres",
                         password=PG_PASSWORD, sslmode="verify-full",
                         sslrootcert=str(postgres_server.ca_file)) as conn:
        assert conn.info.pgconn.ssl_in_use
        method = conn.execute("SELECT current_setting('password_encryption')").fetchone()
        assert method == ("scram-sha-256",)


def test_the_analyst_works_over_tls_with_scram_and_keeps_the_password_out_of_its_url(postgres_server) -> None:
    url = postgres_server.new_database()
    assert PG_PASSWORD not in url and "sslmode=verify-full" in url
    app = create_app(make_config(url))
    try:
        database: Database = app.extensions[EXTENSION].db
        database.ping()
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar()
        assert PG_PASSWORD not in repr(database.engine.url) and PG_PASSWORD not in database.url
    finally:
        app.extensions[EXTENSION].db.dispose()
    with pytest.raises(Exception, match="password authentication failed"):
        Database(url, "not-the-password").ping()


def test_the_check_refuses_a_password_in_the_url_and_a_server_left_unchecked() -> None:
    config = AnalystConfig(db_url="postgresql://analyst:secret@db.example/analyst", badge_pepper="x",
                           insecure_plain_http=True)
    problems = "\n".join(config.problems())
    assert "must not carry the password" in problems and "sslmode=verify-full" in problems
