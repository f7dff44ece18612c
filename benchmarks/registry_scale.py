"""Benchmark: the analyst's registry at a million held jobs (issue 13, part 5), on SQLite and PostgreSQL.

    nice -n 10 .venv/bin/python benchmarks/registry_scale.py [--jobs 1000000] [--users 50000]
        [--sweep 100000] [--backends sqlite postgresql] [--out benchmarks/results/registry_scale.json]

The schema is the analyst's own (its Alembic migrations); the fill is a bulk insert (executemany on
SQLite, COPY on PostgreSQL) of `--jobs` held jobs for `--users` users, two copies each on three
collectors, `--sweep` of them past their lifetime. Every measurement then goes through the analyst's
HTTP API in process (its Flask app, the views and service code a collector calls):

- listing: GET /users/<name>/jobs?limit=100, what a badge login at a terminal asks;
- registration: POST /jobs of a new job (quota checked, as in production);
- reconcile: POST /jobs/lookup of 500 ids (collector.copies.reconcile's batch);
- repair: PUT /jobs/<id>/locations/<collector> (collector.copies.repair_replicas, per job copied again);
- the expiry sweep: POST /maintenance/expire in another process, while this one keeps listing and
  registering; the listing and registration latencies during the sweep are recorded apart.

PostgreSQL is the test suite's own throwaway server (tests/analyst/conftest.py: TLS, SCRAM), started
with fsync and synchronous_commit on, as production runs. Writes the JSON with the command line
and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "registry_scale.json"
COLLECTORS = ("c1", "c2", "c3")
LOOKUP_BATCH = 500  # collector.copies.LOOKUP_BATCH
# The clock the analyst sees: every filled job is submitted before it, the swept ones expire before it.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def summary(samples: list[float]) -> dict[str, Any]:
    """Count, p50, p99, max in milliseconds."""
    if not samples:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"count": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(p99 * 1000, 3), "max_ms": round(ordered[-1] * 1000, 3)}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def job_id(i: int) -> str:
    return f"{i:032x}"


def owner(i: int, users: int) -> str:
    return f"user{i % users:06d}"


def rows(jobs: int, users: int, sweep: int) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """Each filled job's column values (timestamps aware UTC) and the collectors holding it."""
    rng = random.Random(13)
    expired = set(rng.sample(range(jobs), sweep)) if sweep else set()
    for i in range(jobs):
        submitted = NOW - timedelta(seconds=rng.uniform(60, 7 * 3600))
        expires = NOW - timedelta(seconds=1) if i in expired else NOW + timedelta(hours=8)
        first = i % len(COLLECTORS)
        yield ({"id": job_id(i), "owner": owner(i, users), "title": f"document {i}.pdf", "size": 100_000,
                "sha256": "0" * 64, "pages": 3, "copies": 1, "options": "{}", "content_type": "application/pdf",
                "origin_host": "print1", "cups_job_id": str(i), "idempotency_key": f"uuid-{i}", "site": "main",
                "state": "held", "state_reason": "", "submitted_at": submitted, "expires_at": expires,
                "received_by": COLLECTORS[first], "claim_token": 0, "claimed_by": None, "claim_printer": None,
                "lease_expires_at": None, "release_code_hash": None, "updated_at": submitted},
               [COLLECTORS[first], COLLECTORS[(first + 1) % len(COLLECTORS)]])


def job_columns() -> list[str]:
    from analyst.jobs.models import Job

    return [c.name for c in Job.__table__.columns]


def fill_sqlite(path: Path, jobs: int, users: int, sweep: int) -> None:
    columns = job_columns()

    def text(value: Any) -> Any:  # the analyst's SQLite form of a timestamp: naive UTC text
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value

    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # the fill only; the analyst's own settings measure
        connection.execute("BEGIN")
        job_sql = f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        batch: list[tuple[Any, ...]] = []
        locations: list[tuple[str, str, str]] = []
        for values, holders in rows(jobs, users, sweep):
            batch.append(tuple(text(values[c]) for c in columns))
            locations.extend((values["id"], h, text(values["submitted_at"])) for h in holders)
            if len(batch) >= 20_000:
                connection.executemany(job_sql, batch)
                connection.executemany("INSERT INTO job_locations (job_id, collector_id, added_at) VALUES (?, ?, ?)",
                                       locations)
                batch, locations = [], []
        connection.executemany(job_sql, batch)
        connection.executemany("INSERT INTO job_locations (job_id, collector_id, added_at) VALUES (?, ?, ?)",
                               locations)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def fill_postgresql(url: str, password: str, jobs: int, users: int, sweep: int) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    columns = job_columns()
    parts = make_url(url)
    with psycopg.connect(host=parts.host, port=parts.port, user=parts.username, dbname=parts.database,
                         password=password, **parts.query) as connection:  # type: ignore[arg-type]
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY jobs ({', '.join(columns)}) FROM STDIN") as jobs_copy:
                held: list[tuple[str, str, datetime]] = []
                for values, holders in rows(jobs, users, sweep):
                    jobs_copy.write_row(tuple(values[c] for c in columns))
                    held.extend((values["id"], h, values["submitted_at"]) for h in holders)
            with cursor.copy("COPY job_locations (job_id, collector_id, added_at) FROM STDIN") as copies:
                for row in held:
                    copies.write_row(row)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def postgresql_size(url: str, password: str) -> int:
    from sqlalchemy import text

    from analyst.db import make_engine

    engine = make_engine(url, password)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)
    finally:
        engine.dispose()


def sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


class Registry:
    """The analyst's Flask app over one database, called as a collector (its test client, in process)."""

    def __init__(self, url: str, password: str) -> None:
        from analyst.app import create_app
        from analyst.web import EXTENSION
        from tests.analyst.conftest import make_config
        from tests.identities import as_node

        self.app = create_app(make_config(url, db_password=password))
        self.app.extensions[EXTENSION].clock = lambda: NOW
        self.environ = as_node("collector", "c1")
        self._extension = EXTENSION

    def client(self) -> Callable[..., Any]:
        client = self.app.test_client()

        def call(method: str, path: str, **kwargs: Any) -> Any:
            answer = client.open(f"/api/v1{path}", method=method, environ_base=self.environ, **kwargs)
            if answer.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
            return answer.json

        return call

    def close(self) -> None:
        self.app.extensions[self._extension].db.dispose()


def timed(samples: list[float], call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - started)
    return result


class NewJobs:
    """Registrations of jobs that were not filled, each a POST /jobs body."""

    def __init__(self, users: int) -> None:
        self.users = users
        self.n = 0
        self.lock = threading.Lock()
        self.rng = random.Random(5)

    def body(self) -> dict[str, Any]:
        with self.lock:
            self.n += 1
            n = self.n
            user = f"user{self.rng.randrange(self.users):06d}"
        return {"id": f"new-{n:010d}", "owner": user, "title": f"new {n}", "size": 100_000, "pages": 2,
                "idempotency_key": f"new-uuid-{n}", "received_by": "c1", "locations": ["c1", "c2"],
                "submitted_at": NOW.isoformat()}


def measure(url: str, password: str, *, jobs: int, users: int, sweep: int, samples: int,
            sweep_command: list[str]) -> dict[str, Any]:
    registry = Registry(url, password)
    try:
        call = registry.client()
        rng = random.Random(7)
        new_jobs = NewJobs(users)
        listing: list[float] = []
        listed = 0
        for _ in range(samples):
            answer = timed(listing, lambda: call("GET", f"/users/{owner(rng.randrange(users), users)}/jobs?limit=100"))
            listed += len(answer["jobs"])
        registration: list[float] = []
        for _ in range(samples):
            timed(registration, lambda: call("POST", "/jobs", json=new_jobs.body()))
        lookup: list[float] = []
        found = 0
        for _ in range(max(3, samples // 20)):
            start = rng.randrange(max(1, jobs - LOOKUP_BATCH))
            ids = [job_id(i) for i in range(start, min(jobs, start + LOOKUP_BATCH))]
            found += len(timed(lookup, lambda ids=ids: call("POST", "/jobs/lookup", json={"ids": ids}))["jobs"])
        repair: list[float] = []
        for k in range(samples):
            picked = job_id(rng.randrange(jobs))
            timed(repair, lambda path=f"/jobs/{picked}/locations/c{4 + k % 3}": call("PUT", path))
        by_location: list[float] = []
        for k in range(max(3, samples // 50)):
            timed(by_location, lambda path=f"/jobs?location=c{1 + k % 3}&state=held&limit=1000": call("GET", path))

        # The sweep in its own process (a collector's housekeeping call to another analyst worker),
        # logins and registrations here meanwhile.
        during_listing: list[float] = []
        during_registration: list[float] = []
        stop = threading.Event()

        def keep(samples_: list[float], request: Callable[[], Any]) -> None:
            while not stop.is_set():
                timed(samples_, request)
                time.sleep(0.002)

        login_call, register_call = registry.client(), registry.client()
        workers = [
            threading.Thread(target=keep, args=(during_listing, lambda: login_call(
                "GET", f"/users/{owner(random.randrange(users), users)}/jobs?limit=100"))),
            threading.Thread(target=keep, args=(during_registration,
                                                lambda: register_call("POST", "/jobs", json=new_jobs.body()))),
        ]
        for worker in workers:
            worker.start()
        started = time.perf_counter()
        child = subprocess.run(sweep_command, capture_output=True, text=True, timeout=3600)
        sweep_wall = time.perf_counter() - started
        stop.set()
        for worker in workers:
            worker.join()
        if child.returncode != 0:
            raise RuntimeError(f"sweep failed: {child.stderr[-2000:]}")
        swept = json.loads(child.stdout.strip().splitlines()[-1])
        after: list[float] = []
        for _ in range(samples):
            timed(after, lambda: call("GET", f"/users/{owner(rng.randrange(users), users)}/jobs?limit=100"))
        return {
            "listing": {**summary(listing), "jobs_listed_mean": round(listed / max(1, samples), 1)},
            "registration": summary(registration),
            "reconcile_lookup_500": {**summary(lookup), "jobs_found": found},
            "repair_add_location": summary(repair),
            "list_by_location_1000": summary(by_location),
            "sweep": {**swept, "wall_seconds": round(sweep_wall, 3)},
            "listing_during_sweep": summary(during_listing),
            "registration_during_sweep": summary(during_registration),
            "listing_after_sweep": summary(after),
        }
    finally:
        registry.close()


def time_index_migration(url: str, password: str, users: int) -> dict[str, Any]:
    """Migration 0008 at this size: its indexes dropped (a downgrade to 0007), then built again by
    the analyst's own upgrade, timed, with registrations going on meanwhile (how long they wait)."""
    from alembic import command

    from analyst.db import _alembic_config, make_engine, upgrade

    registry = Registry(url, password)  # first: the analyst's start upgrades the schema itself
    engine = make_engine(url, password)
    try:
        with engine.execution_options(pullprint_write=True).begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
    finally:
        engine.dispose()
    try:
        register = registry.client()
        new_jobs, during = NewJobs(users), []
        new_jobs.n = 10**9  # ids apart from the measurements' registrations
        stop = threading.Event()

        def keep_registering() -> None:
            while not stop.is_set():
                timed(during, lambda: register("POST", "/jobs", json=new_jobs.body()))
                time.sleep(0.01)

        worker = threading.Thread(target=keep_registering)
        worker.start()
        time.sleep(0.2)
        started = time.perf_counter()
        upgrade(url, password)
        seconds = time.perf_counter() - started
        time.sleep(0.2)
        stop.set()
        worker.join()
    finally:
        registry.close()
    return {"seconds": round(seconds, 3), "registration_during": summary(during)}


def sweep_child(url: str, password: str) -> None:
    """One POST /maintenance/expire; prints how many jobs it expired and how long it took."""
    registry = Registry(url, password)
    try:
        call = registry.client()
        started = time.perf_counter()
        answer = call("POST", "/maintenance/expire")
        print(json.dumps({"expired": len(answer["expired"]), "interrupted": len(answer["interrupted"]),
                          "seconds": round(time.perf_counter() - started, 3)}))
    finally:
        registry.close()


@contextmanager
def durable_postgres() -> Iterator[Any]:
    """The test suite's PostgreSQL (TLS, SCRAM), but with fsync and synchronous commits on."""
    from tests.analyst.conftest import PostgresServer

    server = PostgresServer()
    run = server._run

    def durable(*argv: str) -> None:
        run(*[a.replace("-c fsync=off ", "").replace("-c synchronous_commit=off ", "")
              .replace("-c full_page_writes=off ", "") for a in argv])

    server._run = durable  # type: ignore[method-assign]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from analyst.db import upgrade
    from tests.analyst.conftest import PG_PASSWORD

    started = time.perf_counter()
    result: dict[str, Any] = {"backend": backend, "load_before": load()}
    with durable_postgres() if backend == "postgresql" else _nothing() as server:
        if backend == "sqlite":
            path = workdir / "analyst.db"
            url, password = f"sqlite:///{path}", ""
            upgrade(url)
            fill_sqlite(path, args.jobs, args.users, args.sweep)
        else:
            url, password = server.new_database(), PG_PASSWORD
            fill_postgresql(url, password, args.jobs, args.users, args.sweep)
        result["fill_seconds"] = round(time.perf_counter() - started, 1)
        size = (lambda: sqlite_size(path)) if backend == "sqlite" else (lambda: postgresql_size(url, password))
        result["db_bytes_filled"] = size()
        sweep_command = [sys.executable, str(Path(__file__).resolve()), "--sweep-child", url]
        env_password = {"PULLPRINT_BENCH_DB_PASSWORD": password}
        os.environ.update(env_password)
        result.update(measure(url, password, jobs=args.jobs, users=args.users, sweep=args.sweep,
                              samples=args.samples, sweep_command=sweep_command))
        result["db_bytes_after"] = size()
        result["migration_0008"] = time_index_migration(url, password, args.users)
    result["load_after"] = load()
    return result


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="held jobs filled (default 1000000)")
    parser.add_argument("--users", type=int, default=50_000, help="users owning them (default 50000)")
    parser.add_argument("--sweep", type=int, help="of those, past their lifetime (default a tenth)")
    parser.add_argument("--samples", type=int, default=1000, help="requests per measurement (default 1000)")
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sweep-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep_child:
        sweep_child(args.sweep_child, os.environ.get("PULLPRINT_BENCH_DB_PASSWORD", ""))
        return
    if args.sweep is None:
        args.sweep = args.jobs // 10
    args.sweep = min(args.sweep, args.jobs)
    results: dict[str, Any] = {
        "benchmark": "registry_scale", "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "nice": os.nice(0), "load_before": load()},
        "jobs": args.jobs, "users": args.users, "sweep_jobs": args.sweep, "samples": args.samples,
        "targets": {"listing_p99_ms": 20, "registration_p99_ms": 10}, "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="pullprint-registry-") as tmp:
        for backend in args.backends:
            results["backends"][backend] = run_backend(backend, args, Path(tmp))
            print(json.dumps({backend: results["backends"][backend]}, indent=1), flush=True)
    results["machine"]["load_after"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
