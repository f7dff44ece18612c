"""The simulated printer, checked from outside: raw sockets and net-snmp's own snmpget/snmpwalk."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from printer_sim.control import SimControlError
from printer_sim.state import FAULTS, encode_error_state

pytestmark = pytest.mark.integration

UPTIME = ".1.3.6.1.2.1.1.3.0"
DEVICE_STATUS = ".1.3.6.1.2.1.25.3.2.1.5.1"
PRINTER_STATUS = ".1.3.6.1.2.1.25.3.5.1.1.1"
ERROR_STATE = ".1.3.6.1.2.1.25.3.5.1.2.1"
ALERTS = ".1.3.6.1.2.1.43.18.1.1"
SUPPLIES = ".1.3.6.1.2.1.43.11.1.1"


def addr(uri: str) -> tuple[str, int]:
    host, port = uri.removeprefix("socket://").rsplit(":", 1)
    return host, int(port)


def send_job(uri: str, data: bytes) -> None:
    with socket.create_connection(addr(uri), timeout=10) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""  # the printer closes only after the job is on disk


def snmp(cmd: str, printer: dict, *oids: str, version: str = "2c", timeout: int = 2) -> subprocess.CompletedProcess:
    if version == "3":
        auth = ["-v3", "-l", "authPriv", "-u", printer["snmp_v3_user"], "-a", printer["snmp_v3_auth_protocol"],
                "-A", printer["snmp_v3_auth_key"], "-x", printer["snmp_v3_priv_protocol"],
                "-X", printer["snmp_v3_priv_key"]]
    else:
        auth = [f"-v{version}", "-c", printer.get("snmp_community", "public")]
    return subprocess.run([cmd, "-On", "-t", str(timeout), "-r", "0", *auth, printer["snmp"], *oids],
                          capture_output=True, text=True, timeout=30)


def values(result: subprocess.CompletedProcess) -> dict[str, str]:
    out = {}
    for line in result.stdout.splitlines():
        if " = " in line:
            oid, value = line.split(" = ", 1)
            if not value.startswith("No more variables"):  # end of a walk past the last object
                out[oid.strip()] = value.strip()
    return out


# --- sink ---------------------------------------------------------------------------------------
def test_each_job_arrives_as_one_file_with_exactly_the_bytes_sent(sim):
    p1 = sim.printer("p1")
    before = len(sim.control.received("p1"))
    jobs = [b"%!PS\n" + os.urandom(n) for n in (0, 1000, 3 * 1024 * 1024 + 17)]
    for data in jobs:
        send_job(p1["uri"], data)
    received = sim.control.received("p1")[before:]
    assert len(received) == 3
    for data, job in zip(jobs, received, strict=True):
        assert job.bytes == len(data)
        assert job.sha256 == hashlib.sha256(data).hexdigest()
        assert job.read() == data
        assert job.complete
    meta = json.loads(received[0].path.with_suffix(".json").read_text())
    assert set(meta) >= {"bytes", "sha256", "received_at", "peer", "complete"}


def test_concurrent_jobs_stay_separate(sim):
    p2 = sim.printer("p2")
    before = len(sim.control.received("p2"))
    jobs = [bytes([i]) * (50_000 + i) for i in range(8)]
    threads = [threading.Thread(target=send_job, args=(p2["uri"], data)) for data in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    received = sim.control.received("p2")[before:]
    assert sorted(j.sha256 for j in received) == sorted(hashlib.sha256(d).hexdigest() for d in jobs)
    assert not [f for f in os.listdir(p2["sink_dir"]) if f.endswith(".tmp")]


def test_a_connection_without_bytes_is_not_a_job(sim):
    p1 = sim.printer("p1")
    before = len(sim.control.received("p1"))
    socket.create_connection(addr(p1["uri"])).close()
    time.sleep(0.2)
    assert len(sim.control.received("p1")) == before


def test_stalled_printer_accepts_but_never_reads(sim):
    p1 = sim.printer("p1")
    before = len(sim.control.received("p1"))
    sim.control.sink("p1", stall=True)
    conn = socket.create_connection(addr(p1["uri"]), timeout=1)
    conn.settimeout(1)
    with pytest.raises(TimeoutError):
        conn.sendall(b"x" * (64 * 1024 * 1024))  # buffers fill up, the sender blocks
    assert len(sim.control.received("p1")) == before
    conn.close()
    sim.control.sink("p1", stall=False)


def test_refusing_printer_refuses_connections_and_comes_back_on_the_same_port(sim):
    p1 = sim.printer("p1")
    sim.control.sink("p1", refuse=True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(addr(p1["uri"]), timeout=1)
    sim.control.sink("p1", refuse=False)
    before = len(sim.control.received("p1"))
    send_job(p1["uri"], b"after power on")
    # Among what arrived since (an earlier test's large job may be recorded after `before` was read).
    deadline = time.monotonic() + 5
    while b"after power on" not in [r.read() for r in sim.control.received("p1")[before:]]:
        assert time.monotonic() < deadline, [r.read()[:20] for r in sim.control.received("p1")[before:]]
        time.sleep(0.05)


def test_slow_printer_delays_each_job(sim):
    p2 = sim.printer("p2")
    sim.control.sink("p2", delay_seconds=0.5)
    started = time.monotonic()
    send_job(p2["uri"], b"slow")
    assert time.monotonic() - started >= 0.5


# --- SNMP seen by net-snmp ------------------------------------------------------------------------
def test_healthy_printer_is_running_and_idle(sim):
    got = values(snmp("snmpget", sim.printer("p1"), UPTIME, DEVICE_STATUS, PRINTER_STATUS, ERROR_STATE))
    assert got[DEVICE_STATUS] == "INTEGER: 2"
    assert got[PRINTER_STATUS] == "INTEGER: 3"
    assert got[ERROR_STATE] == "Hex-STRING: 00 00"
    assert got[UPTIME].startswith("Timeticks:")
    assert not values(snmp("snmpwalk", sim.printer("p1"), ALERTS))


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_shows_in_snmp(sim, fault):
    spec = FAULTS[fault]
    sim.control.set_fault("p1", fault)
    got = values(snmp("snmpget", sim.printer("p1"), DEVICE_STATUS, PRINTER_STATUS, ERROR_STATE))
    expected_hex = " ".join(f"{b:02X}" for b in encode_error_state({spec.bit}))
    assert got[ERROR_STATE] == f"Hex-STRING: {expected_hex}"
    assert got[DEVICE_STATUS] == f"INTEGER: {spec.device_status}"
    assert got[PRINTER_STATUS] == ("INTEGER: 1" if spec.device_status == 5 else "INTEGER: 3")
    alerts = values(snmp("snmpwalk", sim.printer("p1"), ALERTS))
    codes = [v for k, v in alerts.items() if k.startswith(ALERTS + ".7.")]
    assert codes == ([f"INTEGER: {spec.alert[1]}"] if spec.alert else [])
    sim.control.clear("p1", fault)
    assert not values(snmp("snmpwalk", sim.printer("p1"), ALERTS))
    assert values(snmp("snmpget", sim.printer("p1"), DEVICE_STATUS))[DEVICE_STATUS] == "INTEGER: 2"


def test_two_faults_combine_bits_and_alert_rows(sim):
    sim.control.set_fault("p2", "jam", "toner-low")
    got = values(snmp("snmpget", sim.printer("p2"), ERROR_STATE))
    assert got[ERROR_STATE] == "Hex-STRING: 24 00"  # lowToner (bit 2) + jammed (bit 5)
    walk = values(snmp("snmpbulkwalk", sim.printer("p2"), ALERTS))
    assert sorted(v for k, v in walk.items() if k.startswith(ALERTS + ".7.")) == ["INTEGER: 1104", "INTEGER: 8"]
    supplies = values(snmp("snmpwalk", sim.printer("p2"), SUPPLIES))
    assert supplies[SUPPLIES + ".9.1.1"] == "INTEGER: 5"  # toner level low
    assert supplies[SUPPLIES + ".9.1.2"] == "INTEGER: -3"  # some remaining
    assert supplies[SUPPLIES + ".8.1.2"] == "INTEGER: -2"  # capacity unknown


def test_one_byte_error_state(sim):
    sim.control.snmp("p1", error_state_bytes=1)
    sim.control.set_fault("p1", "jam")
    assert values(snmp("snmpget", sim.printer("p1"), ERROR_STATE))[ERROR_STATE] == "Hex-STRING: 04"


def test_snmp_v1_answers_and_reports_missing_objects_as_no_such_name(sim):
    sim.control.set_fault("p1", "door-open")
    got = values(snmp("snmpget", sim.printer("p1"), DEVICE_STATUS, ERROR_STATE, version="1"))
    assert got[DEVICE_STATUS] == "INTEGER: 5"
    assert got[ERROR_STATE] == "Hex-STRING: 08 00"
    missing = snmp("snmpget", sim.printer("p1"), ".1.3.6.1.2.1.25.3.5.1.2.9", version="1")
    assert "noSuchName" in missing.stdout + missing.stderr
    walk = values(snmp("snmpwalk", sim.printer("p1"), ALERTS, version="1"))
    assert [v for k, v in walk.items() if k.startswith(ALERTS + ".7.1.")] == ["INTEGER: 501"]


def test_v3_printer_answers_usm_and_ignores_communities(sim):
    p3 = sim.printer("p3")
    assert p3["snmp_version"] == "3"
    sim.control.set_fault("p3", "paper-out")
    got = values(snmp("snmpget", p3, DEVICE_STATUS, ERROR_STATE, version="3"))
    assert got == {DEVICE_STATUS: "INTEGER: 5", ERROR_STATE: "Hex-STRING: 40 00"}
    walk = values(snmp("snmpwalk", p3, ALERTS, version="3"))
    assert [v for k, v in walk.items() if k.startswith(ALERTS + ".7.1.")] == ["INTEGER: 808"]
    assert "Timeout" in snmp("snmpget", p3, UPTIME, version="2c", timeout=1).stderr
    wrong = snmp("snmpget", {**p3, "snmp_v3_auth_key": "not-the-key"}, UPTIME, version="3", timeout=1)
    assert wrong.returncode != 0


def test_wrong_community_gets_no_answer(sim):
    result = snmp("snmpget", {**sim.printer("p1"), "snmp_community": "guess"}, UPTIME, timeout=1)
    assert "Timeout" in result.stderr


def test_switched_off_agent_does_not_answer(sim):
    sim.control.snmp("p2", respond=False)
    assert "Timeout" in snmp("snmpget", sim.printer("p2"), UPTIME, timeout=1).stderr
    sim.control.snmp("p2", respond=True)
    assert values(snmp("snmpget", sim.printer("p2"), UPTIME))


def test_reboot_restarts_uptime(sim):
    time.sleep(0.3)
    before = int(values(snmp("snmpget", sim.printer("p1"), UPTIME))[UPTIME].split("(")[1].split(")")[0])
    sim.control.reboot("p1")
    after = int(values(snmp("snmpget", sim.printer("p1"), UPTIME))[UPTIME].split("(")[1].split(")")[0])
    assert after < before


def test_writes_are_refused(sim):
    result = snmp("snmpset", sim.printer("p1"), ".1.3.6.1.2.1.1.5.0", "s", "renamed")
    assert "notWritable" in result.stdout + result.stderr


# --- control API ----------------------------------------------------------------------------------
def test_control_api_lists_and_describes(sim):
    printers = sim.control.printers()
    assert [p["id"] for p in printers] == ["p1", "p2", "p3"]
    view = sim.control.set_fault("p2", "offline")
    assert view["faults"] == ["offline"] and view["hrDeviceStatus"] == 5
    assert sim.control.clear("p2")["faults"] == []


def test_control_api_rejects_unknown_faults_and_printers(sim):
    with pytest.raises(SimControlError, match="400"):
        sim.control.set_fault("p1", "on-fire")
    with pytest.raises(SimControlError, match="404"):
        sim.control.printer("p99")
    request = urllib.request.Request(sim.describe["control_url"] + "/printers/p1/faults", data=b"[1,",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 400


def test_describe_file_names_every_port(sim):
    described = json.loads(sim.describe_path.read_text())
    assert described["control_url"].startswith("http://127.0.0.1:")
    for printer in described["printers"]:
        assert printer["uri"].startswith("socket://127.0.0.1:")
        assert printer["snmp"].startswith("127.0.0.1:")
        assert printer["snmp_version"] in ("2c", "3")
