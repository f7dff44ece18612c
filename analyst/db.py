"""The database: the column types, one lazily created engine per process, a session per unit of work, upgrades.

PostgreSQL in production runs over TLS with SCRAM (docs/security.md): the URL names the server and
how to check it (``?sslmode=verify-full&sslrootcert=<cluster CA>``), the password comes apart
(``analyst.db_password``, a secret file) and is handed to the driver here, so it is never part of a
URL that could reach a log line, an error message or a child process's argv.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, create_engine, event, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every analyst sharing one PostgreSQL.
_MIGRATION_LOCK_ID = 0x70756C6C


class Base(DeclarativeBase):
    """Declarative base of every analyst table."""


# A 64-bit auto-incrementing id; SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite (naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every stored value must have one form: naive UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_url(url: str) -> str:
    """Read plain ``postgresql://`` URLs as psycopg 3, the driver the analyst ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def password_in_url(url: str) -> bool:
    """Does `url` carry a password (it must not: give it as ``analyst.db_password``)?"""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return bool(make_url(normalize_url(url)).password)
    except ArgumentError:
        return False


def make_engine(url: str, password: str = "") -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and real (not pysqlite-emulated) transactions.

    `password`: the database role's password, given to the driver apart from the URL."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT and starts transactions late;
            # switch it off and let the "begin" hook below say BEGIN itself (SQLAlchemy's recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # A write transaction takes the write lock up front: a deferred one that read first
            # would fail at once (SQLITE_BUSY_SNAPSHOT) instead of waiting if another wrote meanwhile.
            write = connection.get_execution_options().get("pullprint_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    if password:
        connect_args["password"] = password
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


WRITE_WAIT_SECONDS = 30.0  # as long as SQLite's own busy timeout (PRAGMA busy_timeout below)


class DatabaseBusy(Exception):
    """No turn to write came in time: another writer holds the database."""


class _WriterQueue:
    """SQLite has one writer at a time, and its busy handler polls for the lock with sleeps of up to
    100 ms: with a few workers writing at once (every login records itself) the tail was a second.
    Writers of this analyst queue here instead, a thread lock within a process and `flock` on a file
    beside the database across the gunicorn workers, and each is woken the moment the one before is
    done (within a worker at once; across workers within a millisecond). SQLite's own locking still
    decides; other writers (the CLI) keep polling as before."""

    def __init__(self, database_file: Path) -> None:
        self._path = database_file.with_name(database_file.name + ".writers")
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self, timeout: float = WRITE_WAIT_SECONDS) -> Iterator[None]:
        """Wait (at most `timeout`, as SQLite's busy timeout would) for this writer's turn."""
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            raise DatabaseBusy(f"no turn to write within {timeout:.0f} s")
        try:
            if self._fd is None or self._pid != os.getpid():  # opened after gunicorn forks, once per process
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
            # Another worker's writer: ask again every millisecond (not every 100, as SQLite may).
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DatabaseBusy(f"no turn to write within {timeout:.0f} s") from None
                    time.sleep(0.001)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class Database:
    """The engine of this process, created on first use (so after gunicorn forks), and its sessions."""

    def __init__(self, url: str, password: str = "") -> None:
        self.url = normalize_url(url)
        self._password = password
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._pid = 0
        self._readers: sessionmaker[Session] | None = None
        self._writers: sessionmaker[Session] | None = None
        database_file = _sqlite_file(self.url)
        self._writer_queue = _WriterQueue(database_file) if database_file is not None else None

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                if self._engine is not None:
                    # Inherited across fork: drop the parent's pooled connections without closing them.
                    self._engine.dispose(close=False)
                self._engine = make_engine(self.url, self._password)
                self._pid = os.getpid()
                self._readers = sessionmaker(self._engine, expire_on_commit=False)
                self._writers = sessionmaker(self._engine.execution_options(pullprint_write=True),
                                             expire_on_commit=False)
            return self._engine

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        self.engine  # noqa: B018 - creates the engine and the session makers for this process
        maker = self._writers if write else self._readers
        assert maker is not None
        if not write or self._writer_queue is None:
            with maker() as session, session.begin():
                yield session
            return
        with self._writer_queue.turn(), maker() as session, session.begin():
            yield session

    def ping(self) -> None:
        """Raise unless the database answers ``SELECT 1``."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first upgrade)."""
        from sqlalchemy import MetaData, Table
        from sqlalchemy.exc import NoSuchTableError

        with self.engine.connect() as connection:
            try:
                table = Table("alembic_version", MetaData(), autoload_with=connection)
            except NoSuchTableError:
                return None
            return connection.execute(select(table.c.version_num)).scalar()

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, password: str = "") -> None:
    """Bring the schema at `url` to the newest revision; safe to run from several processes at once."""
    from alembic import command

    # Alembic announces each of its plugins at INFO on every start; that is noise in a service log.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    engine = make_engine(url, password)
    try:
        # On SQLite the write option makes this BEGIN IMMEDIATE, which serializes concurrent upgraders.
        with engine.execution_options(pullprint_write=True).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
