"""The converged site under load loses nothing: faults, a schema migration, an upgrade, a collector added and retired.

A load of submissions, badge logins and releases runs through HAProxy (tests/converge/load.py) while
the site is changed under it, the way operators and failures change it:

1. faults, the short form: a collector SIGKILLed (systemd brings it back), Redis restarted, the
   analyst restarted;
2. the analyst's schema migration, online for the site: the analyst is stopped, its database taken
   back one revision (the schema of the release before), and started, which migrates before it
   serves; meanwhile the collectors ride through in degraded mode (jobs journalled, logins checked
   against the synced directory);
3. a rolling upgrade: site.yml converges the next version (a wheel numbered 0.1.1) onto every host,
   the collectors one at a time through drain, restart, ready and back;
4. a collector added: a fresh host put into the inventory's [collectors] and site.yml run, which
   converges it without restarting the other collectors; it then takes jobs through HAProxy;
5. a collector retired (ansible/retire-collector.yml): drained, its jobs handed over to the others,
   stopped.

After each, every acknowledged job is held or printed exactly once (the analyst's records and the
printer's sink), no submission failed (a retry, as the backend makes, is fine), no login failed, and
the longest login is measured. The figures go to the test's output and to $PULLPRINT_CONVERGE_RESULTS.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.converge.load import Load, check
from tests.converge.site import ANALYST_ENV, PULLPRINT, Site, next_version_wheel, record

pytestmark = pytest.mark.converge
NEXT_VERSION = "0.1.1"
USERS = 6
STEADY_SECONDS = 20  # load before and after each change

# The collector crashes, every process of it at once (gunicorn, its workers, its cupsd), as a SIGKILL
# of the node would: all the service account's processes (it runs nothing else on a collector host).
# (`systemctl kill` cannot signal a unit's other processes in these containers.)
CRASH_COLLECTOR = "pkill -KILL -u pullprint"
# Run on analyst1 with the analyst stopped: its database one revision back, and the revision it is at now.
DOWNGRADE = """
from alembic import command
from alembic.runtime.migration import MigrationContext
from analyst import db
from analyst.config import AnalystConfig
from pullprint import config
settings = config.load(AnalystConfig, "analyst")
engine = db.make_engine(settings.db_url, settings.db_password)
with engine.begin() as connection:
    alembic = db._alembic_config()
    alembic.attributes["connection"] = connection
    command.downgrade(alembic, "-1")
with engine.connect() as connection:
    print(MigrationContext.configure(connection).get_current_revision())
"""
REVISION = """
from alembic.runtime.migration import MigrationContext
from analyst import db
from analyst.config import AnalystConfig
from pullprint import config
settings = config.load(AnalystConfig, "analyst")
with db.make_engine(settings.db_url, settings.db_password).connect() as connection:
    print(MigrationContext.configure(connection).get_current_revision())
"""


@pytest.fixture(scope="module")
def load_people(site: Site) -> dict[str, Any]:
    """Users with badges (a new suffix each session), two release terminals at p1, and a submitting host's token."""
    tag = secrets.token_hex(2)
    users = {f"load{tag}u{i}": str(secrets.randbelow(10**10)).zfill(10) for i in range(USERS)}
    for name, badge in users.items():
        answer = requests.post(f"{site.analyst_url}/api/v1/users", json={"name": name, "badge": badge},
                               verify=site.ca_file, cert=site.admin_cert, timeout=10)
        assert answer.status_code in (200, 201), answer.text
    terminals = [site.ssh("analyst1", f"{ANALYST_ENV} {PULLPRINT} terminal add p1").stdout.strip()
                 .splitlines()[-1].split()[-1] for _ in range(2)]
    token = site.ssh("analyst1", f"{ANALYST_ENV} {PULLPRINT} submitter add loadgen-{tag}").stdout.strip()
    return {"users": users, "terminals": terminals, "token": token.splitlines()[-1]}


def _analyst(site: Site, path: str) -> Any:
    answer = requests.get(f"{site.analyst_url}{path}", verify=site.ca_file, cert=site.admin_cert, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _jobs_of(site: Site, users: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The analyst's records of these users' jobs, by id."""
    return {job["id"]: job for user in users
            for job in _analyst(site, f"/api/v1/jobs?owner={user}&limit=10000")["jobs"]}


def _wait(what: str, ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (requests.RequestException, AssertionError):
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_for_the_analyst(site: Site) -> None:
    _wait("the analyst ready", lambda: requests.get(f"{site.analyst_url}/readyz", verify=site.ca_file,
                                                    cert=site.admin_cert, timeout=5).status_code == 200)


def _under_load(site: Site, people: dict[str, Any], name: str, change: Callable[[Load], dict[str, Any]]) -> None:
    """Run `change` under the load, then hold what the cluster kept against what was acknowledged."""
    load = Load(site.lb_url, site.ca_file, people["token"], people["users"], people["terminals"], "p1")
    before = set(site.sink("p1"))
    earlier = set(_jobs_of(site, people["users"]))  # the earlier tests' jobs of the same users
    load.start()
    try:
        time.sleep(STEADY_SECONDS)
        with load.phase(name):
            details = change(load)
        time.sleep(STEADY_SECONDS)
    finally:
        load.stop()
    figures = load.figures
    records: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        # Journalled registrations replayed, and no release still under way.
        records.clear()
        records.update({k: v for k, v in _jobs_of(site, people["users"]).items() if k not in earlier})
        return all(job in records for job in figures.acked) and not any(
            r["state"] == "releasing" for r in records.values())

    _wait("every acknowledged job at the analyst, none releasing", settled, timeout=180)
    problems = check(figures, records, {k: v for k, v in site.sink("p1").items() if k not in before})
    during = sorted(figures.logins_during(name))
    result = {"change": name, **details, **figures.summary(),
              "longest_login_during_change_s": round(during[-1], 3) if during else None,
              **{key: len(value) for key, value in problems.items()}}
    print(f"\n{name} under load: {json.dumps(result)}")
    record(name, result)
    assert figures.acked, "the load acknowledged nothing"
    assert figures.printed, "the load printed nothing"
    for kind in ("lost", "printed_twice", "registered_twice", "printed_but_not_at_the_printer",
                 "held_but_at_the_printer", "phantom"):
        assert not problems[kind], f"{kind}: {problems[kind][:10]} ({result})"
    assert not figures.failed_submissions, figures.failed_submissions[:10]
    assert not figures.failed_logins, figures.failed_logins[:10]


def test_faults_under_load_lose_nothing(site: Site, load_people: dict[str, Any]) -> None:
    def faults(load: Load) -> dict[str, Any]:
        site.ssh("c2", CRASH_COLLECTOR)  # Restart=on-failure brings it back
        time.sleep(15)
        site.ssh("redis1", "systemctl restart redis-server")
        time.sleep(15)
        site.ssh("analyst1", "systemctl restart pullprint-analyst")
        _wait_for_the_analyst(site)
        return {"faults": ["SIGKILL c2's collector", "restart redis", "restart the analyst"]}

    _under_load(site, load_people, "faults", faults)


@pytest.mark.slow  # a long form: PULLPRINT_CONVERGE=1
def test_the_analysts_schema_migration_under_load_loses_nothing(site: Site, load_people: dict[str, Any]) -> None:
    def migrate(load: Load) -> dict[str, Any]:
        python = "/opt/pullprint/venv/bin/python"
        head = site.ssh("analyst1", f"{ANALYST_ENV} {python} -c {shlex.quote(REVISION)}").stdout.strip()
        stopped = time.monotonic()
        site.ssh("analyst1", "systemctl stop pullprint-analyst")
        back = site.ssh("analyst1", f"{ANALYST_ENV} {python} -c {shlex.quote(DOWNGRADE)}").stdout.strip()
        assert back != head, (head, back)
        site.ssh("analyst1", "systemctl start pullprint-analyst")  # migrates back to head, then serves
        _wait_for_the_analyst(site)
        analyst_away = time.monotonic() - stopped
        now = site.ssh("analyst1", f"{ANALYST_ENV} {python} -c {shlex.quote(REVISION)}").stdout.strip()
        assert now == head, (head, now)
        return {"migration": f"{back} -> {head}", "analyst_away_s": round(analyst_away, 1)}

    _under_load(site, load_people, "schema migration", migrate)


@pytest.mark.slow  # a long form: PULLPRINT_CONVERGE=1
def test_a_rolling_upgrade_under_load_loses_nothing(site: Site, load_people: dict[str, Any]) -> None:
    wheel = next_version_wheel(NEXT_VERSION)

    def upgrade(load: Load) -> dict[str, Any]:
        site.write_settings(pullprint_wheel=str(wheel))
        run = site.playbook()
        assert run.returncode == 0 and run.total("failed") == 0, run.output[-6000:]
        return {"version": NEXT_VERSION, "site_yml_s": round(run.seconds, 1), "changes": run.total("changed")}

    _under_load(site, load_people, "rolling upgrade", upgrade)

    def upgraded() -> bool:
        collectors = _analyst(site, "/api/v1/collectors")["collectors"]
        return {c["id"]: c["version"] for c in collectors if c["alive"]} == dict.fromkeys(("c1", "c2", "c3"),
                                                                                         NEXT_VERSION)

    _wait(f"every collector on {NEXT_VERSION}", upgraded, timeout=60)
    for host in ("analyst1", "print1"):
        shown = site.ssh(host, "/opt/pullprint/venv/bin/pip show pullprint").stdout
        assert f"Version: {NEXT_VERSION}" in shown, (host, shown)


@pytest.mark.slow  # a long form: PULLPRINT_CONVERGE=1
def test_a_database_restored_from_its_backup_loses_no_held_job(site: Site, load_people: dict[str, Any]) -> None:
    # The backup is a day old, say: jobs held since are not in it. After the restore the collectors'
    # reconcile finds their (committed) copies unknown to the analyst and registers them again.
    owner = sorted(load_people["users"])[0]
    load = Load(site.lb_url, site.ca_file, load_people["token"], load_people["users"], [], "p1")
    session = requests.Session()

    def submit_some(n: int) -> list[str]:
        before = set(load.figures.acked)
        for _ in range(n):
            load.submit(session, owner, f"restore {uuid.uuid4().hex}\n".encode())
        assert not load.figures.failed_submissions, load.figures.failed_submissions
        return sorted(set(load.figures.acked) - before)

    in_backup = submit_some(3)
    site.ssh("analyst1", "systemctl start pullprint-db-backup.service")
    dump = site.ssh("analyst1", "ls -t /var/backups/pullprint-db/pullprint-*.dump | head -1").stdout.strip()
    after_backup = submit_some(3)
    site.ssh("analyst1", "systemctl stop pullprint-analyst")
    site.ssh("analyst1", f"su postgres -c 'pg_restore --clean --if-exists --dbname=pullprint {shlex.quote(dump)}'")
    site.ssh("analyst1", "systemctl start pullprint-analyst")
    _wait_for_the_analyst(site)
    restored_at = time.monotonic()

    def held() -> set[str]:
        jobs = _analyst(site, f"/api/v1/jobs?owner={owner}&limit=10000")["jobs"]
        return {job["id"] for job in jobs if job["state"] == "held"}

    assert set(in_backup) <= held()
    _wait("the jobs held since the backup registered again", lambda: set(after_backup) <= held(), timeout=180)
    took = time.monotonic() - restored_at
    print(f"\nrestore: {len(after_backup)} jobs held after the backup were registered again {took:.0f} s "
          f"after the restored analyst was up (the collectors' reconcile)")


@pytest.mark.slow  # a long form: PULLPRINT_CONVERGE=1
def test_adding_a_collector_under_load_loses_nothing(site: Site, load_people: dict[str, Any]) -> None:
    # c4 was built with the others but kept out of the inventory: now it goes into [collectors].
    count = "find /var/lib/pullprint/spool/jobs -name '*.spool' | wc -l"
    main_pid = "systemctl show -p MainPID --value pullprint-collector"
    others = ("c1", "c2", "c3")

    def add(load: Load) -> dict[str, Any]:
        before = {host: site.ssh(host, main_pid).stdout.strip() for host in others}
        site.enlist("c4")
        run = site.playbook()
        assert run.returncode == 0 and run.total("failed") == 0, run.output[-6000:]
        _wait("c4 alive at the analyst", lambda: any(
            c["id"] == "c4" and c["alive"] for c in _analyst(site, "/api/v1/collectors")["collectors"]))
        # The other collectors were not restarted: nothing of theirs changed.
        assert {host: site.ssh(host, main_pid).stdout.strip() for host in others} == before
        return {"added": "c4", "site_yml_s": round(run.seconds, 1), "changes": run.total("changed"),
                "changed_on_c4": run.recap["c4"]["changed"]}

    _under_load(site, load_people, "add a collector", add)
    # It takes new jobs (and copies of them) through HAProxy from the first moment it is ready.
    assert int(site.ssh("c4", count).stdout.strip()) > 0, "no job reached c4"


@pytest.mark.slow  # a long form: PULLPRINT_CONVERGE=1
def test_retiring_a_collector_under_load_loses_nothing(site: Site, load_people: dict[str, Any]) -> None:
    spool = "/var/lib/pullprint/spool/jobs"
    count = f"find {spool} -name '*.spool' | wc -l"

    def retire(load: Load) -> dict[str, Any]:
        held = int(site.ssh("c3", count).stdout.strip())
        run = site.playbook("-e", "retire=c3", playbook="retire-collector.yml")
        assert run.returncode == 0 and run.total("failed") == 0, run.output[-6000:]
        left = int(site.ssh("c3", count).stdout.strip())
        assert left == 0, f"{left} jobs still on c3 after its hand-over"
        state = site.ssh("c3", "systemctl is-active pullprint-collector", check=False).stdout.strip()
        assert state != "active", state
        return {"retired": "c3", "jobs_on_it_before": held, "retire_yml_s": round(run.seconds, 1)}

    _under_load(site, load_people, "retire a collector", retire)
