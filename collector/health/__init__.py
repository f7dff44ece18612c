"""Printer health over SNMP: reading (snmp), judging (policy), caching (cache) and fleet polling (poller)."""

from collector.health.model import PrinterHealth
from collector.health.policy import HealthVerdict, judge

__all__ = ["HealthVerdict", "PrinterHealth", "judge"]
