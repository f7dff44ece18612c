"""One simulated printer's health state and the MIB values derived from it (pure, thread-safe)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# --- OIDs served (numeric: Debian ships no MIB files) -----------------------------------------
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
HR_DEVICE_TYPE = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2)
HR_DEVICE_DESCR = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 3)
HR_DEVICE_STATUS = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5)
HR_PRINTER_STATUS = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 1)
HR_PRINTER_ERROR_STATE = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 2)
HR_DEVICE_PRINTER = (1, 3, 6, 1, 2, 1, 25, 3, 1, 5)
PRT_MARKER_SUPPLIES = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1)  # + (col, hrDeviceIndex, supplyIndex)
PRT_ALERT = (1, 3, 6, 1, 2, 1, 43, 18, 1, 1)  # + (col, hrDeviceIndex, alertIndex)
SIM_ENTERPRISE = (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)  # net-snmp's "experimental" arc, only as sysObjectID

DEVICE_INDEX = 1

# hrDeviceStatus / hrPrinterStatus values
RUNNING, WARNING, DOWN = 2, 3, 5
OTHER, IDLE, PRINTING = 1, 3, 4
# prtAlertSeverityLevel
CRITICAL, WARN = 3, 4

# hrPrinterDetectedErrorState: bit n is bit (7 - n % 8) of byte n // 8 (bit 0 = MSB of byte 1).
ERROR_BITS = {
    "lowPaper": 0, "noPaper": 1, "lowToner": 2, "noToner": 3, "doorOpen": 4, "jammed": 5, "offline": 6,
    "serviceRequested": 7, "inputTrayMissing": 8, "outputTrayMissing": 9, "markerSupplyMissing": 10,
    "outputNearFull": 11, "outputFull": 12, "inputTrayEmpty": 13, "overduePreventMaint": 14,
}


@dataclass(frozen=True)
class Fault:
    """What one fault does to the MIB: an error bit, the device status, and an optional alert row."""

    bit: str
    device_status: int
    alert: tuple[int, int, str] | None  # (severity, prtAlertCode, description)


FAULTS: dict[str, Fault] = {
    "paper-out": Fault("noPaper", DOWN, (CRITICAL, 808, "Input tray 1 is empty: load paper")),
    "jam": Fault("jammed", DOWN, (CRITICAL, 8, "Paper jam in the paper path")),
    "door-open": Fault("doorOpen", DOWN, (CRITICAL, 501, "Front door is open")),
    "offline": Fault("offline", DOWN, None),
    "toner-low": Fault("lowToner", WARNING, (WARN, 1104, "Black toner is low")),
    "toner-empty": Fault("noToner", DOWN, (CRITICAL, 1101, "Black toner is empty")),
    "paper-low": Fault("lowPaper", WARNING, (WARN, 807, "Input tray 1 is almost empty")),
    "output-full": Fault("outputFull", DOWN, (CRITICAL, 903, "Output bin is full")),
}


def encode_error_state(bits: set[str] | frozenset[str], length: int = 2) -> bytes:
    """hrPrinterDetectedErrorState octets for a set of bit names (`length` 1 or 2 bytes)."""
    value = bytearray(length)
    for name in bits:
        bit = ERROR_BITS[name]
        if bit // 8 < length:
            value[bit // 8] |= 0x80 >> (bit % 8)
    return bytes(value)


class UnknownFault(ValueError):
    pass


@dataclass
class Alert:
    index: int
    severity: int
    code: int
    description: str
    raised_ticks: int


@dataclass
class PrinterState:
    """Health of one simulated printer. Mutated by the control thread, read by the SNMP loop."""

    printer_id: str
    faults: set[str] = field(default_factory=set)
    # SNMP knobs: answer at all, and how many octets hrPrinterDetectedErrorState has
    snmp_respond: bool = True
    error_state_bytes: int = 2
    printing: int = 0  # open sink connections (hrPrinterStatus printing(4))
    boots: int = 1
    booted_at: float = field(default_factory=time.monotonic)
    alerts: list[Alert] = field(default_factory=list)
    _next_alert: int = 1
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _mib: dict[tuple[int, ...], tuple[str, object]] | None = field(default=None, repr=False)
    _mib_order: list[tuple[int, ...]] = field(default_factory=list, repr=False)

    # --- changes ---------------------------------------------------------------------------
    def change_faults(self, set_: list[str] | tuple[str, ...] = (), clear: list[str] | tuple[str, ...] = (),
                      clear_all: bool = False) -> None:
        unknown = [f for f in [*set_, *clear] if f not in FAULTS]
        if unknown:
            raise UnknownFault(f"unknown fault(s) {unknown}; known: {sorted(FAULTS)}")
        with self._lock:
            before = set(self.faults)
            if clear_all:
                self.faults.clear()
            self.faults.difference_update(clear)
            self.faults.update(set_)
            for name in before - self.faults:
                alert = FAULTS[name].alert
                if alert:
                    self.alerts = [a for a in self.alerts if a.code != alert[1]]
            for name in sorted(self.faults - before):
                self._raise_alert(name)
            self._mib = None

    def _raise_alert(self, fault: str) -> None:
        spec = FAULTS[fault].alert
        if spec is None:
            return
        self.alerts.append(Alert(self._next_alert, spec[0], spec[1], spec[2], self.uptime_ticks()))
        self._next_alert += 1

    def reboot(self) -> None:
        """Simulated power cycle: sysUpTime restarts at 0, alert rows are re-raised from index 1."""
        with self._lock:
            self.booted_at = time.monotonic()
            self.boots += 1
            self.alerts = []
            self._next_alert = 1
            for name in sorted(self.faults):
                self._raise_alert(name)
            self._mib = None

    def set_snmp(self, respond: bool | None = None, error_state_bytes: int | None = None) -> None:
        with self._lock:
            if respond is not None:
                self.snmp_respond = bool(respond)
            if error_state_bytes is not None:
                if error_state_bytes not in (1, 2):
                    raise ValueError("error_state_bytes must be 1 or 2")
                self.error_state_bytes = error_state_bytes
            self._mib = None

    def job_started(self) -> None:
        with self._lock:
            self.printing += 1
            self._mib = None

    def job_finished(self) -> None:
        with self._lock:
            self.printing -= 1
            self._mib = None

    # --- derived values --------------------------------------------------------------------
    def uptime_ticks(self) -> int:
        return int((time.monotonic() - self.booted_at) * 100)

    def device_status(self) -> int:
        statuses = [FAULTS[f].device_status for f in self.faults]
        return max(statuses, default=RUNNING)

    def printer_status(self) -> int:
        if self.device_status() == DOWN:
            return OTHER
        return PRINTING if self.printing else IDLE

    def error_bits(self) -> set[str]:
        return {FAULTS[f].bit for f in self.faults}

    def supplies(self) -> list[tuple[int, int, str, int, int]]:
        """(index, class, description, max, level); class 3 consumed, 4 receptacle filled."""
        toner = 0 if "toner-empty" in self.faults else 5 if "toner-low" in self.faults else 80
        return [
            (1, 3, "Black Toner Cartridge", 100, toner),
            (2, 4, "Waste Toner Box", -2, -3),  # max unknown, "some remaining"
            (3, 3, "Imaging Drum", 20000, -2),  # level unknown
        ]

    def mib(self) -> tuple[dict[tuple[int, ...], tuple[str, object]], list[tuple[int, ...]]]:
        """{oid: (type, value)} plus the sorted OIDs. sysUpTime is ("uptime", None): read it live."""
        with self._lock:
            if self._mib is not None:
                return self._mib, self._mib_order
            d = DEVICE_INDEX
            mib: dict[tuple[int, ...], tuple[str, object]] = {
                SYS_DESCR: ("str", f"pullprint simulated printer {self.printer_id}"),
                SYS_OBJECT_ID: ("oid", SIM_ENTERPRISE),
                SYS_UPTIME: ("uptime", None),
                SYS_NAME: ("str", self.printer_id),
                HR_DEVICE_TYPE + (d,): ("oid", HR_DEVICE_PRINTER),
                HR_DEVICE_DESCR + (d,): ("str", "pullprint SimLaser 9100"),
                HR_DEVICE_STATUS + (d,): ("int", self.device_status()),
                HR_PRINTER_STATUS + (d,): ("int", self.printer_status()),
                HR_PRINTER_ERROR_STATE + (d,): ("bytes", encode_error_state(self.error_bits(),
                                                                          self.error_state_bytes)),
            }
            for index, klass, descr, maximum, level in self.supplies():
                mib[PRT_MARKER_SUPPLIES + (4, d, index)] = ("int", klass)
                mib[PRT_MARKER_SUPPLIES + (6, d, index)] = ("str", descr)
                mib[PRT_MARKER_SUPPLIES + (8, d, index)] = ("int", maximum)
                mib[PRT_MARKER_SUPPLIES + (9, d, index)] = ("int", level)
            for alert in self.alerts:
                mib[PRT_ALERT + (2, d, alert.index)] = ("int", alert.severity)
                mib[PRT_ALERT + (7, d, alert.index)] = ("int", alert.code)
                mib[PRT_ALERT + (8, d, alert.index)] = ("str", alert.description)
                mib[PRT_ALERT + (9, d, alert.index)] = ("ticks", alert.raised_ticks)
            self._mib = mib
            self._mib_order = sorted(mib)
            return self._mib, self._mib_order

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "id": self.printer_id,
                "faults": sorted(self.faults),
                "hrDeviceStatus": self.device_status(),
                "hrPrinterStatus": self.printer_status(),
                "error_bits": sorted(self.error_bits()),
                "error_state_hex": encode_error_state(self.error_bits(), self.error_state_bytes).hex(),
                "alerts": [{"index": a.index, "severity": a.severity, "code": a.code,
                            "description": a.description} for a in self.alerts],
                "uptime_ticks": self.uptime_ticks(),
                "boots": self.boots,
                "snmp_respond": self.snmp_respond,
                "error_state_bytes": self.error_state_bytes,
                "printing": self.printing,
            }
