"""Printer health against the real simulator and a real redis-server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from collector.health.cache import HISTORY_LENGTH, check_printer, read_health, read_history, store_health
from collector.health.model import PrinterHealth
from collector.health.poller import HealthPoller, rendezvous_owner
from collector.health.snmp import SnmpTarget, poll_many
from printer_sim.cluster import start_sim
from pullprint import keys

pytestmark = pytest.mark.integration

HARD_FAULTS = {
    "paper-out": "printer-error:media-empty",
    "jam": "printer-error:jammed",
    "door-open": "printer-error:door-open",
    "offline": "printer-error:offline",
    "toner-empty": "printer-error:toner-empty",
    "output-full": "printer-error:output-full",
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    handle = start_sim(4, tmp_path_factory.mktemp("sim"), v3=("p4",))
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _reset(sim):
    yield
    for printer in sim.printers:
        sim.control.clear(printer["id"])
        sim.control.snmp(printer["id"], respond=True, error_state_bytes=2)


def record(sim, printer_id, **extra):
    """The printer as the analyst would hand it to a collector."""
    described = sim.printer(printer_id)
    printer = {k: v for k, v in described.items() if k.startswith("snmp")}
    printer.update(id=printer_id, uri=described["uri"], in_service=True, unreachable_policy="refuse", site="main")
    printer.update(extra)
    return printer


@pytest.mark.parametrize(("fault", "reason"), sorted(HARD_FAULTS.items()))
def test_each_hard_fault_refuses_then_clearing_allows(sim, redis, fault, reason):
    printer = record(sim, "p1")
    sim.control.set_fault("p1", fault)
    verdict = check_printer(printer, redis)
    assert (verdict.allowed, verdict.reason, verdict.state) == (False, reason, "error")
    sim.control.clear("p1", fault)
    verdict = check_printer(printer, redis, max_age=0)  # force a fresh reading
    assert (verdict.allowed, verdict.reason, verdict.warnings) == (True, None, [])


@pytest.mark.parametrize(("fault", "warning"), [("toner-low", "toner-low"), ("paper-low", "media-low")])
def test_warnings_allow_release(sim, redis, fault, warning):
    sim.control.set_fault("p2", fault)
    verdict = check_printer(record(sim, "p2"), redis)
    assert verdict.allowed and verdict.warnings == [warning] and verdict.state == "warning"


def test_fresh_cache_is_used_and_stale_cache_is_refreshed(sim, redis):
    printer = record(sim, "p1")
    assert check_printer(printer, redis).allowed
    stored = read_health(redis, "p1")
    assert stored is not None and stored.reachable and stored.polled_at <= time.time()
    sim.control.set_fault("p1", "jam")
    assert check_printer(printer, redis, max_age=30).allowed  # the cached reading is still fresh
    time.sleep(0.3)
    verdict = check_printer(printer, redis, max_age=0.2)  # now it is too old: poll again
    assert verdict.reason == "printer-error:jammed"
    assert read_health(redis, "p1").error_bits == ["jammed"]
    assert len(read_history(redis, "p1")) == 2


def test_dead_agent_answers_within_the_timeout(sim, redis):
    sim.control.snmp("p3", respond=False)
    started = time.monotonic()
    verdict = check_printer(record(sim, "p3"), redis, timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert (verdict.allowed, verdict.reason, verdict.state) == (False, "printer-error:unreachable", "unreachable")
    stored = read_health(redis, "p3")
    assert stored is not None and not stored.reachable and stored.error

    allow = check_printer(record(sim, "p3", unreachable_policy="allow"), redis, timeout=0.5, max_age=0)
    assert allow.allowed and allow.warnings == ["printer-unreachable"]


def test_nothing_listening_is_unreachable_not_an_exception(redis):
    printer = {"id": "ghost", "snmp_host": "127.0.0.1", "snmp_port": 9, "unreachable_policy": "refuse"}
    verdict = check_printer(printer, redis, timeout=0.3)
    assert verdict.reason == "printer-error:unreachable"


def test_printer_without_snmp_is_allowed_without_polling(redis):
    verdict = check_printer({"id": "plain", "uri": "socket://10.0.0.9:9100"}, redis)
    assert (verdict.allowed, verdict.warnings, verdict.state) == (True, [], "unmonitored")
    assert read_health(redis, "plain") is None


def test_out_of_service_is_refused_without_polling(sim, redis):
    verdict = check_printer(record(sim, "p1", in_service=False), redis)
    assert verdict.reason == "printer-out-of-service"
    assert read_health(redis, "p1") is None


def test_snmp_v1_reading(sim, redis):
    sim.control.set_fault("p2", "door-open")
    verdict = check_printer(record(sim, "p2", snmp_version="1"), redis)
    assert verdict.reason == "printer-error:door-open"
    health = read_health(redis, "p2")
    assert [a.code for a in health.alerts] == [501]
    assert [s.description for s in health.supplies][:1] == ["Black Toner Cartridge"]


def test_snmp_v3_reading_and_wrong_key(sim, redis):
    sim.control.set_fault("p4", "paper-out")
    assert check_printer(record(sim, "p4"), redis).reason == "printer-error:media-empty"
    wrong = check_printer(record(sim, "p4", id="p4-wrong", snmp_v3_auth_key="not-the-key"), redis, timeout=0.5)
    assert wrong.reason == "printer-error:unreachable"


def test_one_byte_error_state_from_the_agent(sim, redis):
    sim.control.snmp("p1", error_state_bytes=1)
    sim.control.set_fault("p1", "jam")
    check_printer(record(sim, "p1"), redis)
    health = read_health(redis, "p1")
    assert health.error_state == "04" and health.error_bits == ["jammed"]


def test_poll_many_reads_everything_and_notes_reboots(sim):
    sim.control.set_fault("p1", "jam", "toner-low")
    sim.control.snmp("p3", respond=False)
    targets = [SnmpTarget.from_printer(record(sim, p["id"], snmp_timeout=0.3, snmp_retries=0))
               for p in sim.printers]
    first = asyncio.run(poll_many(targets, concurrency=2))
    assert set(first) == {"p1", "p2", "p3", "p4"}
    assert first["p1"].error_bits == ["lowToner", "jammed"] and first["p1"].device_status == 5
    assert sorted(a.code for a in first["p1"].alerts) == [8, 1104]
    toner = first["p1"].supplies[0]
    assert (toner.level, toner.max_capacity, toner.percent) == (5, 100, 5.0)
    waste = first["p1"].supplies[1]
    assert waste.some_remaining and waste.percent is None
    assert not first["p3"].reachable and "timeout" in first["p3"].error.lower()
    assert first["p4"].reachable and first["p2"].printer_status == 3
    time.sleep(0.2)
    sim.control.reboot("p2")
    second = asyncio.run(poll_many(targets, previous=first, supplies=False))
    assert second["p2"].rebooted and not second["p1"].rebooted
    assert second["p1"].supplies == first["p1"].supplies  # carried over when not re-read


def test_history_is_capped(redis):
    for i in range(HISTORY_LENGTH + 10):
        store_health(redis, PrinterHealth("p1", True, 1000.0 + i, uptime=float(i)))
    assert redis.llen(keys.printer_health_history("p1")) == HISTORY_LENGTH
    assert read_health(redis, "p1").polled_at == 1000.0 + HISTORY_LENGTH + 9


def test_two_collectors_share_the_fleet_each_printer_polled_once(sim, redis):
    printers = [record(sim, p["id"]) for p in sim.printers]
    members = ["c1", "c2"]
    polled: dict[str, list[str]] = {}
    pollers = [HealthPoller(c, redis, lambda: printers, site="main", interval=5, members=lambda: members)
               for c in members]

    async def both():
        results = await asyncio.gather(*(p.run_cycle() for p in pollers))
        for poller, readings in zip(pollers, results, strict=True):
            polled[poller.collector_id] = sorted(readings)

    asyncio.run(both())
    assert sorted(polled["c1"] + polled["c2"]) == ["p1", "p2", "p3", "p4"]
    for pid in ["p1", "p2", "p3", "p4"]:
        assert pid in polled[rendezvous_owner(pid, members)]
        assert redis.get(keys.poll_owner(pid)) == rendezvous_owner(pid, members)
    # within the same cycle window nobody polls again, whatever it believes about membership
    lone = HealthPoller("c3", redis, lambda: printers, interval=5, members=lambda: ["c3"])
    assert asyncio.run(lone.run_cycle()) == {}


def test_orphaned_printers_are_taken_over(sim, redis):
    printers = [record(sim, "p1")]
    store_health(redis, PrinterHealth("p1", True, time.time() - 600))  # owner stopped polling long ago
    poller = HealthPoller("c2", redis, lambda: printers, interval=5, members=lambda: ["c1", "c2", "c9"])
    owner = rendezvous_owner("p1", ["c1", "c2", "c9"])
    readings = asyncio.run(poller.run_cycle())
    assert "p1" in readings, f"takeover expected (hash owner {owner})"


def test_background_poller_reports_state_changes(sim, redis):
    printers = [record(sim, "p1"), record(sim, "p2")]
    reports: list[tuple[str, PrinterHealth]] = []
    seen = threading.Event()

    def report(printer_id, health):
        reports.append((printer_id, health))
        if printer_id == "p1" and "jammed" in health.error_bits:
            seen.set()

    poller = HealthPoller("c1", redis, lambda: printers, interval=0.3, report=report, members=lambda: ["c1"])
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while len({pid for pid, _ in reports}) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {pid for pid, _ in reports} == {"p1", "p2"}  # first readings are reported
        count = len(reports)
        time.sleep(1.0)
        assert len(reports) == count  # nothing changed: nothing reported
        sim.control.set_fault("p1", "jam")
        assert seen.wait(10)
        assert check_printer(printers[0], redis).reason == "printer-error:jammed"  # from the poller's cache
    finally:
        poller.stop()
    assert poller.cycles >= 3 and poller.last_cycle["polled"] == 2
