"""A printer's health as read over SNMP, and the pure decoding of its Printer-MIB values."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# hrPrinterDetectedErrorState (RFC 2790/3805): bit 0 is the most significant bit of the first octet.
ERROR_STATE_BITS = (
    "lowPaper", "noPaper", "lowToner", "noToner", "doorOpen", "jammed", "offline", "serviceRequested",
    "inputTrayMissing", "outputTrayMissing", "markerSupplyMissing", "outputNearFull", "outputFull",
    "inputTrayEmpty", "overduePreventMaint",
)

DEVICE_STATUS = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}
PRINTER_STATUS = {1: "other", 2: "unknown", 3: "idle", 4: "printing", 5: "warmup"}
ALERT_SEVERITY = {1: "other", 3: "critical", 4: "warning", 5: "warningBinaryChangeEvent"}

# prtMarkerSuppliesLevel / MaxCapacity special values
SUPPLY_OTHER, SUPPLY_UNKNOWN, SUPPLY_SOME_REMAINING = -1, -2, -3


def decode_error_state(octets: bytes) -> list[str]:
    """Names of the bits set in hrPrinterDetectedErrorState.

    Agents send 1 or 2 octets (some pad to more); bits beyond the 15 defined ones are ignored and
    a missing second octet simply means its bits are clear.
    """
    names = []
    for bit, name in enumerate(ERROR_STATE_BITS):
        byte, offset = divmod(bit, 8)
        if byte < len(octets) and octets[byte] & (0x80 >> offset):
            names.append(name)
    return names


def supply_percent(level: int, max_capacity: int) -> float | None:
    """Percent remaining, only when both values are real amounts (> 0 capacity, >= 0 level)."""
    if max_capacity > 0 and level >= 0:
        return round(min(level, max_capacity) * 100.0 / max_capacity, 1)
    return None


@dataclass
class Supply:
    index: int
    description: str
    level: int
    max_capacity: int
    percent: float | None = None
    some_remaining: bool = False  # level -3: "at least one unit remains", amount unknown

    @classmethod
    def from_values(cls, index: int, description: str, level: int, max_capacity: int) -> Supply:
        return cls(index, description, level, max_capacity, supply_percent(level, max_capacity),
                   level == SUPPLY_SOME_REMAINING)


@dataclass
class Alert:
    index: int
    severity: int
    code: int
    description: str = ""

    @property
    def critical(self) -> bool:
        return self.severity == 3


@dataclass
class PrinterHealth:
    """One SNMP reading of one printer. `reachable=False` readings carry only `error` and times."""

    printer_id: str
    reachable: bool
    polled_at: float  # epoch seconds when the reading finished
    error: str | None = None
    uptime: float | None = None  # seconds since the printer's agent started (sysUpTime / 100)
    device_status: int | None = None  # hrDeviceStatus
    printer_status: int | None = None  # hrPrinterStatus
    error_state: str | None = None  # hrPrinterDetectedErrorState as hex, as received
    error_bits: list[str] = field(default_factory=list)
    supplies: list[Supply] = field(default_factory=list)
    supplies_at: float | None = None  # when supplies were read (they are polled less often)
    alerts: list[Alert] = field(default_factory=list)
    rebooted: bool = False  # uptime went down since the previous reading
    duration: float = 0.0  # seconds the poll took

    @property
    def device_status_name(self) -> str | None:
        return DEVICE_STATUS.get(self.device_status, "invalid") if self.device_status is not None else None

    @property
    def printer_status_name(self) -> str | None:
        return PRINTER_STATUS.get(self.printer_status, "invalid") if self.printer_status is not None else None

    def age(self, now: float) -> float:
        return now - self.polled_at

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrinterHealth:
        data = dict(data)
        data["supplies"] = [Supply(**s) for s in data.get("supplies", [])]
        data["alerts"] = [Alert(**a) for a in data.get("alerts", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str | bytes) -> PrinterHealth:
        return cls.from_dict(json.loads(text))

    def same_state(self, other: PrinterHealth | None) -> bool:
        """True when nothing a release decision or an operator cares about changed."""
        if other is None:
            return False
        return (self.reachable, self.device_status, self.printer_status, sorted(self.error_bits),
                sorted((a.code, a.severity) for a in self.alerts)) == \
               (other.reachable, other.device_status, other.printer_status, sorted(other.error_bits),
                sorted((a.code, a.severity) for a in other.alerts))


def note_reboot(health: PrinterHealth, previous: PrinterHealth | None) -> PrinterHealth:
    """Mark `health.rebooted` when its uptime is lower than the previous reading's."""
    if (previous is not None and health.uptime is not None and previous.uptime is not None
            and health.uptime < previous.uptime):
        health.rebooted = True
    return health
