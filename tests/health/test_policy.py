"""The release decision from a health reading (unit, pure)."""

from __future__ import annotations

import pytest

from collector.health.model import Alert, PrinterHealth
from collector.health.policy import judge
from collector.messages import MESSAGES

NOW = 1_000_000.0
PRINTER = {"id": "p1", "snmp_host": "10.0.0.5", "in_service": True, "unreachable_policy": "allow"}


def reading(bits=(), device_status=2, printer_status=3, alerts=(), reachable=True, age=1.0):
    return PrinterHealth("p1", reachable, NOW - age, device_status=device_status if reachable else None,
                         printer_status=printer_status if reachable else None, error_bits=list(bits),
                         alerts=list(alerts))


@pytest.mark.parametrize(("bits", "reason"), [
    (["offline"], "printer-error:offline"),
    (["jammed"], "printer-error:jammed"),
    (["noPaper"], "printer-error:media-empty"),
    (["doorOpen"], "printer-error:door-open"),
    (["noToner"], "printer-error:toner-empty"),
    (["outputFull"], "printer-error:output-full"),
])
def test_every_hard_error_refuses_with_its_reason(bits, reason):
    verdict = judge(reading(bits, device_status=5, printer_status=1), PRINTER, now=NOW)
    assert not verdict.allowed
    assert verdict.reason == reason
    assert verdict.state == "error"
    assert verdict.message == MESSAGES[reason]


def test_down_without_a_named_cause():
    verdict = judge(reading(device_status=5, printer_status=1), PRINTER, now=NOW)
    assert (verdict.allowed, verdict.reason) == (False, "printer-error:down")


def test_paper_out_message_is_plain_language():
    assert MESSAGES["printer-error:media-empty"] == "The printer is out of paper"


def test_critical_alert_alone_refuses():
    jam = Alert(7, 3, 8, "Paper jam")
    verdict = judge(reading(alerts=[jam], device_status=3), PRINTER, now=NOW)
    assert (verdict.allowed, verdict.reason) == (False, "printer-error:jammed")


def test_several_errors_are_all_listed_first_is_the_reason():
    verdict = judge(reading(["jammed", "noPaper", "lowToner"], device_status=5), PRINTER, now=NOW)
    assert verdict.reason == "printer-error:jammed"
    assert verdict.errors == ["printer-error:jammed", "printer-error:media-empty"]
    assert verdict.warnings == ["toner-low"]


@pytest.mark.parametrize(("bits", "warnings"), [
    (["lowToner"], ["toner-low"]),
    (["lowPaper"], ["media-low"]),
    (["lowToner", "lowPaper"], ["toner-low", "media-low"]),
])
def test_warnings_allow(bits, warnings):
    verdict = judge(reading(bits, device_status=3), PRINTER, now=NOW)
    assert verdict.allowed and verdict.reason is None
    assert verdict.warnings == warnings
    assert verdict.state == "warning"


def test_empty_supersedes_low():
    verdict = judge(reading(["noToner", "lowToner"], device_status=5), PRINTER, now=NOW)
    assert verdict.reason == "printer-error:toner-empty" and verdict.warnings == []


def test_healthy_printer_is_ok():
    verdict = judge(reading(), PRINTER, now=NOW)
    assert (verdict.allowed, verdict.reason, verdict.warnings, verdict.state) == (True, None, [], "ok")


@pytest.mark.parametrize("health", [None, reading(reachable=False), reading(age=120.0)],
                         ids=["no-reading", "unreachable", "stale"])
def test_unreachable_allow_policy(health):
    verdict = judge(health, PRINTER, now=NOW, max_age=30)
    assert verdict.allowed
    assert verdict.warnings == ["printer-unreachable"]
    assert verdict.state == "unreachable"


@pytest.mark.parametrize("health", [None, reading(reachable=False), reading(age=120.0)],
                         ids=["no-reading", "unreachable", "stale"])
def test_unreachable_refuse_policy(health):
    verdict = judge(health, {**PRINTER, "unreachable_policy": "refuse"}, now=NOW, max_age=30)
    assert (verdict.allowed, verdict.reason, verdict.state) == (False, "printer-error:unreachable", "unreachable")


def test_default_unreachable_policy_is_allow():
    printer = {k: v for k, v in PRINTER.items() if k != "unreachable_policy"}
    assert judge(None, printer, now=NOW).allowed


def test_out_of_service_refuses_whatever_the_reading():
    verdict = judge(reading(), {**PRINTER, "in_service": False}, now=NOW)
    assert (verdict.allowed, verdict.reason, verdict.state) == (False, "printer-out-of-service", "out-of-service")


def test_printer_without_snmp_is_allowed_unmonitored():
    verdict = judge(None, {"id": "p7", "unreachable_policy": "refuse"}, now=NOW)
    assert (verdict.allowed, verdict.warnings, verdict.state) == (True, [], "unmonitored")


def test_every_reason_has_a_message():
    for code in ["printer-error:down", "printer-error:offline", "printer-error:jammed",
                 "printer-error:media-empty", "printer-error:door-open", "printer-error:toner-empty",
                 "printer-error:output-full", "printer-error:unreachable", "printer-out-of-service",
                 "toner-low", "media-low", "printer-unreachable"]:
        assert MESSAGES[code]
