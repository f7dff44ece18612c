"""Decide whether a job may be released to a printer, from its newest health reading (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.health.model import PrinterHealth
from collector.messages import MESSAGES

DOWN, WARNING = 5, 3  # hrDeviceStatus

# Hard errors, most specific and most actionable first: the first one found is the reason shown.
ERROR_BITS = (
    ("offline", "printer-error:offline"),
    ("jammed", "printer-error:jammed"),
    ("doorOpen", "printer-error:door-open"),
    ("noPaper", "printer-error:media-empty"),
    ("noToner", "printer-error:toner-empty"),
    ("outputFull", "printer-error:output-full"),
)
WARNING_BITS = (
    ("lowToner", "toner-low"),
    ("lowPaper", "media-low"),
    ("inputTrayEmpty", "media-low"),  # one tray empty; others may still feed
    ("outputNearFull", "output-near-full"),
    ("serviceRequested", "service-requested"),
)
# prtAlertCode of critical alerts that mean the same hard errors (some printers set alerts, not bits)
CRITICAL_ALERT_CODES = {
    8: "printer-error:jammed",
    3: "printer-error:door-open", 5: "printer-error:door-open", 501: "printer-error:door-open",
    808: "printer-error:media-empty",
    1101: "printer-error:toner-empty", 1102: "printer-error:toner-empty",
    903: "printer-error:output-full",
    22: "printer-error:offline",
}
WARNING_ALERT_CODES = {1104: "toner-low", 807: "media-low"}


STATES = ("ok", "warning", "error", "unreachable", "out-of-service", "unmonitored")


@dataclass
class HealthVerdict:
    """Whether to release now. `reason` is set exactly when refused; warnings never block."""

    allowed: bool
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    state: str = "ok"  # one of STATES
    errors: list[str] = field(default_factory=list)  # every hard error seen (reason is the first)

    @property
    def message(self) -> str | None:
        return MESSAGES.get(self.reason) if self.reason else None

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reason": self.reason, "message": self.message,
                "warnings": self.warnings, "state": self.state, "errors": self.errors}


def monitored(printer: Mapping[str, Any]) -> bool:
    return bool(printer.get("snmp_host") or printer.get("snmp"))


def judge(health: PrinterHealth | None, printer: Mapping[str, Any], *, now: float,
          max_age: float | None = 30.0) -> HealthVerdict:
    """The release decision for `printer` given its newest reading (None: no reading at all).

    printer keys used: `in_service` (default True), `unreachable_policy` ("allow" default, or
    "refuse"), `snmp_host`/`snmp` (no agent configured → not monitored → allowed).
    A reading older than `max_age` seconds counts as no reading.
    """
    if printer.get("in_service") is False:
        return HealthVerdict(False, "printer-out-of-service", state="out-of-service")
    if not monitored(printer):
        return HealthVerdict(True, state="unmonitored")
    stale = health is not None and max_age is not None and now - health.polled_at > max_age
    if health is None or not health.reachable or stale:
        if str(printer.get("unreachable_policy") or "allow") == "refuse":
            return HealthVerdict(False, "printer-error:unreachable", state="unreachable")
        return HealthVerdict(True, warnings=["printer-unreachable"], state="unreachable")

    errors: list[str] = []
    warnings: list[str] = []
    bits = set(health.error_bits)
    for bit, reason in ERROR_BITS:
        if bit in bits and reason not in errors:
            errors.append(reason)
    for alert in health.alerts:
        code = CRITICAL_ALERT_CODES.get(alert.code) if alert.critical else None
        if code and code not in errors:
            errors.append(code)
        warn = WARNING_ALERT_CODES.get(alert.code)
        if warn and not alert.critical and warn not in warnings:
            warnings.append(warn)
    for bit, warning in WARNING_BITS:
        if bit in bits and warning not in warnings:
            warnings.append(warning)
    if health.device_status == DOWN and not errors:
        errors.append("printer-error:down")  # down without a reason we can name
    # an empty toner/paper also sets its "low" bit on many printers: the error says it all
    if "printer-error:toner-empty" in errors and "toner-low" in warnings:
        warnings.remove("toner-low")
    if "printer-error:media-empty" in errors and "media-low" in warnings:
        warnings.remove("media-low")
    if errors:
        return HealthVerdict(False, errors[0], warnings, state="error", errors=errors)
    state = "warning" if warnings or health.device_status == WARNING else "ok"
    return HealthVerdict(True, None, warnings, state=state)
