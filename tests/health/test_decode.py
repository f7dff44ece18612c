"""Decoding Printer-MIB values: error-state bits, supply levels, reading round trips (unit)."""

from __future__ import annotations

import pytest

from collector.health.model import Alert, PrinterHealth, Supply, decode_error_state, note_reboot, supply_percent


@pytest.mark.parametrize(("octets", "names"), [
    (b"", []),
    (b"\x00", []),
    (b"\x00\x00", []),
    (b"\x80", ["lowPaper"]),
    (b"\x40\x00", ["noPaper"]),
    (b"\x24\x00", ["lowToner", "jammed"]),  # the golden value from the reference notes
    (b"\x24", ["lowToner", "jammed"]),  # the same, from an agent that sends one octet
    (b"\x08", ["doorOpen"]),
    (b"\x02", ["offline"]),
    (b"\x01", ["serviceRequested"]),
    (b"\x10\x00", ["noToner"]),
    (b"\x00\x08", ["outputFull"]),
    (b"\x00\x80", ["inputTrayMissing"]),
    (b"\x00\x10", ["outputNearFull"]),
    (b"\x00\x04", ["inputTrayEmpty"]),
    (b"\x00\x02", ["overduePreventMaint"]),
    (b"\x00\x01", []),  # bit 15 is not defined
    (b"\xff\xff", ["lowPaper", "noPaper", "lowToner", "noToner", "doorOpen", "jammed", "offline",
                   "serviceRequested", "inputTrayMissing", "outputTrayMissing", "markerSupplyMissing",
                   "outputNearFull", "outputFull", "inputTrayEmpty", "overduePreventMaint"]),
    (b"\x04\x08\xff", ["jammed", "outputFull"]),  # padding octets beyond the second are ignored
])
def test_error_state_bits(octets, names):
    assert decode_error_state(octets) == names


@pytest.mark.parametrize(("level", "maximum", "percent"), [
    (50, 100, 50.0), (0, 100, 0.0), (3, 40, 7.5), (120, 100, 100.0),
    (-3, 100, None), (-2, 100, None), (-1, 100, None), (50, -2, None), (50, 0, None), (-3, -2, None),
])
def test_supply_percent_only_for_real_amounts(level, maximum, percent):
    assert supply_percent(level, maximum) == percent


def test_some_remaining_is_flagged():
    assert Supply.from_values(2, "Waste", -3, -2).some_remaining
    assert not Supply.from_values(1, "Toner", 5, 100).some_remaining


def test_reading_round_trips_through_json():
    health = PrinterHealth("p1", True, 1700000000.5, uptime=12.34, device_status=5, printer_status=1,
                           error_state="2400", error_bits=["lowToner", "jammed"],
                           supplies=[Supply.from_values(1, "Black", 5, 100)],
                           alerts=[Alert(3, 3, 8, "Paper jam")], supplies_at=1700000000.0)
    again = PrinterHealth.from_json(health.to_json())
    assert again == health
    assert again.alerts[0].critical
    assert again.device_status_name == "down" and again.printer_status_name == "other"


def test_unreachable_reading_round_trips():
    health = PrinterHealth("p9", False, 1.0, error="No SNMP response received before timeout")
    assert PrinterHealth.from_json(health.to_json()) == health


def test_reboot_is_noted_when_uptime_goes_down():
    old = PrinterHealth("p1", True, 100.0, uptime=5000.0)
    assert note_reboot(PrinterHealth("p1", True, 110.0, uptime=3.0), old).rebooted
    assert not note_reboot(PrinterHealth("p1", True, 110.0, uptime=5010.0), old).rebooted
    assert not note_reboot(PrinterHealth("p1", True, 110.0, uptime=3.0), None).rebooted
    assert not note_reboot(PrinterHealth("p1", False, 110.0), old).rebooted
