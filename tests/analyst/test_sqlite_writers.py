"""On SQLite the analyst's writers take turns (a thread lock, and flock across gunicorn's workers): every
write lands, none fails with "database is locked", and a waiting writer blocks on the turn, not on SQLite."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from analyst.db import Database, DatabaseBusy


def _count(database: Database) -> int:
    with database.session() as session:
        return int(session.execute(text("SELECT n FROM counter")).scalar_one())


def _increment(url: str, times: int, threads: int) -> None:
    database = Database(url)

    def work() -> None:
        for _ in range(times):
            with database.session(write=True) as session:  # read, then write: a lost update if not serialized
                n = session.execute(text("SELECT n FROM counter")).scalar_one()
                session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@pytest.fixture
def database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'analyst.db'}")
    with database.session(write=True) as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    return database


def test_writers_of_several_processes_and_threads_all_land(database: Database) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_increment, args=(database.url, 40, 4)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert _count(database) == 3 * 4 * 40


def test_a_writer_holds_the_turn_other_processes_wait_on(database: Database, tmp_path: Path) -> None:
    turn_file = tmp_path / "analyst.db.writers"
    with database.session(write=True) as session:
        session.execute(text("UPDATE counter SET n = 7"))
        fd = os.open(turn_file, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # another process could not take the turn now
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(turn_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again once the transaction is done
    finally:
        os.close(fd)
    assert _count(database) == 7


def test_a_writer_that_gets_no_turn_in_time_is_told_so(database: Database, tmp_path: Path) -> None:
    # Another process holds the turn (a writer stuck in its transaction): this one gives up after its
    # timeout, as SQLite's busy timeout would, rather than hang the request for ever.
    fd = os.open(tmp_path / "analyst.db.writers", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(DatabaseBusy), database._writer_queue.turn(timeout=0.2):
            pass
    finally:
        os.close(fd)
    with database.session(write=True) as session:  # and the turn is free again after
        session.execute(text("UPDATE counter SET n = 3"))
    assert _count(database) == 3
