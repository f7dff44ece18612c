"""site.yml converges a whole site onto real hosts, a second run changes nothing, and the site prints.

Debian 12 hosts with systemd (scripts/testbed): analyst1 (the analyst and its PostgreSQL), redis1,
collectors c1-c3, lb1 (HAProxy), print1 (the shared SecurePrint queue), ws1 (a workstation whose
queue prints to print1) and printers1 (a raw 9100 printer p1 and an IPP printer p2, ippeveprinter);
c4 is built too, for test_under_load.py to add.
One ansible-playbook run from empty must end failed=0; a second run must change nothing; a broken
setting is refused by the daemon's own check before it is installed; a changed setting restarts that
node only; and a job printed with `lp` on the workstation is held, listed at a badge login through
HAProxy, and released onto a printer, over raw 9100 and over IPP, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.converge.site import ANALYST_ENV, PULLPRINT, Site, record

pytestmark = pytest.mark.converge
# Which service runs where once the site has converged.
SERVICES = {"analyst1": ["postgresql", "pullprint-analyst", "pullprint-db-backup.timer"],
            "redis1": ["redis-server"], "c1": ["pullprint-collector"], "c2": ["pullprint-collector"],
            "c3": ["pullprint-collector"], "lb1": ["haproxy"], "print1": ["cups", "avahi-daemon"],
            "ws1": ["cups"], "printers1": ["pullprint-printer-sim"]}
# Where a service's process is: Debian's postgresql.service is a oneshot without one (MainPID 0
# whether or not the server restarted); the cluster's own unit has the postmaster.
PROCESS_UNITS = {"postgresql": "postgresql@15-main"}


def _main_pids(site: Site) -> dict[str, str]:
    pids = {}
    for host, units in SERVICES.items():
        for unit in units:
            if unit.endswith(".timer"):
                continue
            out = site.ssh(host, f"systemctl show -p MainPID --value {PROCESS_UNITS.get(unit, unit)}").stdout.strip()
            assert out not in ("", "0"), f"{host}/{unit} has no running process"
            pids[f"{host}/{unit}"] = out
    return pids


def test_one_run_converges_the_whole_site_from_empty(site: Site) -> None:
    first = site.first
    assert first is not None
    assert set(first.recap) == set(site.enlisted), first.output[-3000:]
    assert first.returncode == 0 and first.total("failed") == 0 and first.total("unreachable") == 0, \
        first.output[-6000:]
    print(f"first converge: {first.seconds:.0f} s, {first.total('changed')} changes "
          f"(hosts built in {site.timings['hosts']:.0f} s, wheels in {site.timings['wheels']:.0f} s)")
    for host, units in SERVICES.items():
        for unit in units:
            state = site.ssh(host, f"systemctl is-active {unit}; systemctl is-enabled {unit}", check=False).stdout
            assert state.split() == ["active", "enabled"], (host, unit, state)


def test_a_second_run_changes_nothing(site: Site) -> None:
    before = _main_pids(site)
    second = site.playbook()
    assert second.returncode == 0 and second.total("failed") == 0, second.output[-6000:]
    print(f"second converge: {second.seconds:.0f} s, {second.total('changed')} changes")
    first = site.first
    assert first is not None
    record("site", {"hosts": len(site.enlisted), "wheels_s": round(site.timings["wheels"], 1),
                    "hosts_built_s": round(site.timings["hosts"], 1),
                    "first_run_s": round(first.seconds, 1), "first_run_changed": first.total("changed"),
                    "second_run_s": round(second.seconds, 1), "second_run_changed": second.total("changed")})
    assert second.total("changed") == 0, "\n".join(second.changed_tasks())
    # Nothing was restarted either.
    assert _main_pids(site) == before


def test_the_hosts_run_what_was_asked(site: Site) -> None:
    """TLS and the checks the roles configured, seen on the hosts themselves."""
    # PostgreSQL: TLS on, SCRAM, only hostssl from the analyst; the analyst is in with verify-full.
    psql = site.ssh("analyst1", "su postgres -c \"psql -Atc 'show ssl; show password_encryption'\"").stdout.split()
    assert psql == ["on", "scram-sha-256"]
    hba = site.ssh("analyst1", "grep -E '^(host|hostssl)' /etc/postgresql/15/main/pg_hba.conf").stdout
    assert f"hostssl    pullprint  pullprint  {site.address('analyst1')}/32  scram-sha-256" in hba
    ready = requests.get(f"{site.analyst_url}/readyz", verify=site.ca_file,
                         cert=site.admin_cert, timeout=10)
    assert ready.status_code == 200, ready.text
    # Redis: TLS only (no plain port), ACL users, the default user off.
    conf = site.ssh("redis1", "grep -E '^(port|tls-port|tls-auth-clients|aclfile|user default)' /etc/redis/redis.conf"
                    " /etc/redis/users.acl 2>/dev/null; ss -ltn").stdout
    assert "port 0" in conf and "tls-port 6379" in conf and "tls-auth-clients yes" in conf, conf
    # HAProxy: the config passes haproxy -c on the host; the runtime socket answers; all three collectors UP.
    site.ssh("lb1", "haproxy -c -f /etc/haproxy/haproxy.cfg")
    status = site.ssh("lb1", f"{PULLPRINT} lb status --socket /run/haproxy/pullprint-admin.sock").stdout
    for collector in ("c1", "c2", "c3"):
        assert any(collector in line and "UP" in line for line in status.splitlines()), status
    # cupsd on the print server: its config passes cupsd -t; the queue is shared.
    site.ssh("print1", "cupsd -t -c /etc/cups/cupsd.conf")
    assert "printer-is-shared=true" in site.ssh("print1", "lpoptions -p SecurePrint").stdout
    # The database backup: the timer's service makes a dump pg_restore can read.
    site.ssh("analyst1", "systemctl start pullprint-db-backup.service")
    listing = site.ssh("analyst1", "f=$(ls -t /var/backups/pullprint-db/pullprint-*.dump | head -1); "
                       "su postgres -c \"pg_restore --list $f\"").stdout
    assert "TABLE public jobs" in listing, listing[-2000:]


def test_a_broken_setting_is_refused_by_the_services_own_check(site: Site) -> None:
    """`validate:` runs `pullprint collector --check-config` on the host: the run fails, the node keeps its
    config and keeps running."""
    before = site.ssh("c1", "sha256sum /etc/pullprint/collector.json; systemctl show -p MainPID --value "
                      "pullprint-collector").stdout
    broken = site.playbook("--limit", "c1", "-e", json.dumps({"pullprint_collector_replicas": 0}))
    assert broken.returncode != 0 and broken.recap["c1"]["failed"] == 1, broken.output[-4000:]
    # The refusal is the collector's own check's, on the host, of the file it was about to get.
    failed = broken.output.split("fatal: [c1]", 1)[0].rsplit("TASK [", 1)[-1]
    assert failed.startswith("pullprint_collector : Write the collector's settings"), failed
    assert "failed to validate" in broken.output and "collector.replicas: must be at least 1" in broken.output, \
        broken.output[-4000:]
    after = site.ssh("c1", "sha256sum /etc/pullprint/collector.json; systemctl show -p MainPID --value "
                     "pullprint-collector").stdout
    assert after == before


def test_a_changed_setting_restarts_that_node_only(site: Site) -> None:
    before = _main_pids(site)
    changed = site.playbook("--limit", "c2", "-e", json.dumps({"pullprint_collector_threads": 6}))
    assert changed.returncode == 0 and changed.total("failed") == 0, changed.output[-4000:]
    tasks = changed.changed_tasks()
    assert any("Write the collector's settings" in t for t in tasks), tasks
    # Drained at HAProxy first, restarted, put back once ready (the handlers, in that order).
    order = [line for line in changed.output.splitlines() if line.startswith("RUNNING HANDLER [")]
    assert [h.split(" : ")[-1].rstrip("] *") for h in order] == [
        "drain pullprint-collector", "restart pullprint-collector", "wait until pullprint-collector is ready",
        "put pullprint-collector back into rotation"], order
    after = _main_pids(site)
    restarted = sorted(k for k in before if before[k] != after[k])
    assert restarted == ["c2/pullprint-collector"], (before, after)
    status = site.ssh("lb1", f"{PULLPRINT} lb status --socket /run/haproxy/pullprint-admin.sock").stdout
    assert any("c2" in line and "UP" in line for line in status.splitlines()), status


@pytest.fixture(scope="module")
def people(site: Site) -> dict[str, str]:
    """A person (alice and a suffix: a kept testbed takes a new one each session): a directory account on the
    workstation and the print server (same password), and a pullprint user with a badge; a release
    terminal enrolled at each printer."""
    user = f"alice{secrets.token_hex(2)}"
    password, badge, pin = secrets.token_urlsafe(12), str(secrets.randbelow(10**10)).zfill(10), "482915"
    for host in ("ws1", "print1"):
        site.ssh(host, f"id {user} >/dev/null 2>&1 || useradd --create-home {user}; chpasswd",
                 stdin=f"{user}:{password}\n")
    site.ssh("analyst1", f"{ANALYST_ENV} {PULLPRINT} user add {user} --badge-stdin --pin-stdin",
             stdin=f"{badge}\n{pin}\n")
    terminals = {}
    for printer in ("p1", "p2"):
        out = site.ssh("analyst1", f"{ANALYST_ENV} {PULLPRINT} terminal add {printer}").stdout
        terminals[printer] = out.strip().splitlines()[-1].split()[-1]
    return {"user": user, "password": password, "badge": badge, "t_p1": terminals["p1"], "t_p2": terminals["p2"]}


def _lp(site: Site, people: dict[str, str], name: str, data: bytes) -> str:
    user = people["user"]
    path = f"/home/{user}/{name}"
    site.ssh("ws1", f"cat > {path} && chown {user} {path}", stdin=data.decode())
    script = (Path(__file__).with_name("lp_as_user.py")).read_text()
    result = site.ssh("ws1", f"python3 -c {shlex.quote(script)} {user} -d SecurePrint {path}",
                      stdin=people["password"] + "\n", check=False)
    assert result.returncode == 0 and "request id is" in result.stdout, result.stdout + result.stderr
    return result.stdout


def _login(site: Site, people: dict[str, str], printer: str, title: str, timeout: float = 60) -> tuple[str, str]:
    """Badge login through HAProxy at `printer`'s terminal until the job titled `title` is listed."""
    deadline = time.monotonic() + timeout
    seen: object = None
    while time.monotonic() < deadline:
        answer = requests.post(f"{site.lb_url}/api/v1/sessions", json={"printer": printer, "badge": people["badge"]},
                               headers={"Authorization": f"Bearer {people['t_' + printer]}"},
                               verify=site.ca_file, timeout=10)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        seen = body["jobs"]
        for job in body["jobs"]:
            if job["title"] == title:
                return body["session"], job["id"]
        requests.delete(f"{site.lb_url}/api/v1/sessions/{body['session']}",
                        headers={"Authorization": f"Bearer {people['t_' + printer]}"}, verify=site.ca_file, timeout=10)
        time.sleep(1)
    raise AssertionError(f"{title} never listed at the login: {seen}; print1: "
                         + site.ssh("print1", "lpstat -W all -o; tail -5 /var/log/cups/error_log", check=False).stdout
                         + site.ssh("ws1", "lpstat -W all -l -o; tail -5 /var/log/cups/error_log", check=False).stdout)


@pytest.mark.parametrize("printer", ["p1", "p2"], ids=["raw-9100", "ipp"])
def test_lp_on_the_workstation_is_held_listed_and_released_onto_the_printer(
        site: Site, people: dict[str, str], printer: str) -> None:
    title = f"report-{printer}-{uuid.uuid4().hex[:8]}.txt"
    data = (f"quarterly figures for {printer}\n" + "x" * 5000 + f"\n{uuid.uuid4()}\n").encode()
    before = site.sink(printer)
    _lp(site, people, title, data)
    session, job = _login(site, people, printer, title)
    # Held: nothing at the printer until the release.
    assert site.sink(printer) == before
    answer = requests.post(f"{site.lb_url}/api/v1/sessions/{session}/release", json={"jobs": [job]},
                           headers={"Authorization": f"Bearer {people['t_' + printer]}",
                                    "Idempotency-Key": uuid.uuid4().hex}, verify=site.ca_file, timeout=120)
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = {k: v for k, v in site.sink(printer).items() if k not in before}
        if new:
            break
        time.sleep(0.5)
    assert list(new.values()) == [hashlib.sha256(data).hexdigest()], (answer.json(), new)
