"""Read printer health over SNMP (asyncio): one client, many printers, bounded concurrency.

Two front ends, one per security model, each created once per client:
- v1/v2c go through `CommunityClient` (collector/health/community.py): one UDP socket, requests
  matched by id and by the printer's address, BER by collector/health/ber.py. pysnmp's v1arch
  dispatcher spent 1.3 ms of pyasn1 decoding a full answer that the codec decodes in 55 µs (2,000
  printers: 5.5 s of poller CPU per full cycle before, 0.7 s after; measured, docs/printers.md).
- v3 (USM) needs an engine (engine-id discovery, keys, time windows): one pysnmp v3arch SnmpEngine.
  Its values are turned into the codec's types, so everything after the request sees one kind.

A v2c/v3 reading is normally ONE round trip: a GETBULK whose non-repeaters fetch the four scalars
(as GETNEXT of the OID just before each instance) and whose repeaters walk the marker-supplies and
alert columns side by side. Only a printer with more rows than `max_repetitions` needs a second
request. SNMPv1 has no GETBULK: a GET for the scalars, then GETNEXT steps over the columns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB256_AES,
    USM_PRIV_NONE,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
)

from collector.health import ber
from collector.health.community import Address, CommunityClient, NoAnswer
from collector.health.model import Alert, PrinterHealth, Supply, decode_error_state, note_reboot

OID = tuple[int, ...]
SYS_UPTIME: OID = (1, 3, 6, 1, 2, 1, 1, 3)  # instance .0
HR_DEVICE_STATUS: OID = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5)
HR_PRINTER_STATUS: OID = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 1)
HR_PRINTER_ERROR_STATE: OID = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 2)
PRT_MARKER_SUPPLIES: OID = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1)
PRT_ALERT: OID = (1, 3, 6, 1, 2, 1, 43, 18, 1, 1)
SUPPLY_COLUMNS = {"description": 6, "max": 8, "level": 9}
ALERT_COLUMNS = {"severity": 2, "code": 7, "description": 8}
MAX_TABLE_ROWS = 64  # a printer claiming more supplies or alerts than this is misbehaving
# Printers polled at once. A silent printer holds its slot for timeout × (retries + 1), 2 s by
# default: with 10 % of 2,000 silent, 128 slots spent 3.1 s on them alone. The bound protects the
# socket's receive queue and the agents, not memory: 512 in flight is ~300 KiB of answers.
DEFAULT_CONCURRENCY = 512

AUTH = {"NONE": USM_AUTH_NONE, "MD5": USM_AUTH_HMAC96_MD5, "SHA": USM_AUTH_HMAC96_SHA,
        "SHA224": USM_AUTH_HMAC128_SHA224, "SHA256": USM_AUTH_HMAC192_SHA256,
        "SHA384": USM_AUTH_HMAC256_SHA384, "SHA512": USM_AUTH_HMAC384_SHA512}
PRIV = {"NONE": USM_PRIV_NONE, "DES": USM_PRIV_CBC56_DES, "AES": USM_PRIV_CFB128_AES,
        "AES128": USM_PRIV_CFB128_AES, "AES256": USM_PRIV_CFB256_AES}

_KINDS = {"get": ber.GET, "next": ber.GETNEXT, "bulk": ber.GETBULK}


@dataclass(frozen=True)
class SnmpTarget:
    """Where and how to ask one printer. Built from a printer record with `from_printer`."""

    printer_id: str
    host: str
    port: int = 161
    version: str = "2c"  # "1", "2c" or "3"
    community: str = "public"
    user: str = ""
    auth_protocol: str = "SHA"
    auth_key: str = ""
    priv_protocol: str = "AES"
    priv_key: str = ""
    timeout: float = 1.0  # per try
    retries: int = 1
    device_index: int = 1  # hrDeviceIndex of the printer row

    @classmethod
    def from_printer(cls, printer: Mapping[str, Any]) -> SnmpTarget | None:
        """From a printer record: `snmp_host` (+ `snmp_port`) or `snmp` "host:port", plus `snmp_*`
        settings. None when the printer has no SNMP agent configured (it is then not monitored)."""
        host = printer.get("snmp_host")
        port = printer.get("snmp_port") or 161
        if not host and printer.get("snmp"):
            host, _, port_text = str(printer["snmp"]).rpartition(":")
            if not host:
                host, port_text = port_text, "161"
            port = int(port_text)
        if not host:
            return None
        version = str(printer.get("snmp_version") or "2c").lower().removeprefix("v")
        if version not in ("1", "2c", "3"):
            raise ValueError(f"printer {printer.get('id')}: unknown snmp_version {version!r}")
        return cls(printer_id=str(printer["id"]), host=str(host), port=int(port), version=version,
                   community=str(printer.get("snmp_community") or "public"),
                   user=str(printer.get("snmp_v3_user") or ""),
                   auth_protocol=str(printer.get("snmp_v3_auth_protocol") or "SHA").upper(),
                   auth_key=str(printer.get("snmp_v3_auth_key") or ""),
                   priv_protocol=str(printer.get("snmp_v3_priv_protocol") or "AES").upper(),
                   priv_key=str(printer.get("snmp_v3_priv_key") or ""),
                   timeout=float(printer.get("snmp_timeout") or 1.0),
                   retries=int(printer.get("snmp_retries", 1) if printer.get("snmp_retries") is not None else 1),
                   device_index=int(printer.get("snmp_device_index") or 1))

    def usm_user(self) -> UsmUserData:
        """The v3 USM user data (the security level follows from which keys are set)."""
        return UsmUserData(self.user, self.auth_key or None, self.priv_key or None,
                           authProtocol=AUTH[self.auth_protocol] if self.auth_key else USM_AUTH_NONE,
                           privProtocol=PRIV[self.priv_protocol] if self.priv_key else USM_PRIV_NONE)

    def worst_case_seconds(self) -> float:
        """How long an unreachable printer holds a poll: every try times out."""
        return self.timeout * (self.retries + 1)


class _NumericV3Target(UdpTransportTarget):
    """Skips getaddrinfo for numeric addresses: pysnmp resolves every target in the default thread
    pool, and thousands of hand-offs between pool threads and the loop thread (GIL switches) cost seconds."""

    async def _resolve_address(self, transportAddr: tuple) -> tuple[str, int]:
        if _ipv4(transportAddr[0]) is not None:
            return transportAddr[0], int(transportAddr[1])
        return await super()._resolve_address(transportAddr)


def _ipv4(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(address) if isinstance(address, ipaddress.IPv4Address) else None


class SnmpFailure(Exception):
    """The agent did not answer, or answered with an error for the whole request."""


class _PduError(SnmpFailure):
    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _oid(o: OID) -> ObjectType:
    return ObjectType(ObjectIdentity(".".join(map(str, o))))


def _value_ok(value: Any) -> bool:
    return not isinstance(value, ber.Missing)


def _from_pyasn1(value: Any) -> ber.Value:
    """A pysnmp (v3) value as the codec's type, chosen by its tag on the wire as for v1/v2c."""
    tag = value.tagSet[-1]
    wire = tag.tagClass | tag.tagFormat | tag.tagId
    if isinstance(value, univ.Null):  # NULL, noSuchObject, noSuchInstance, endOfMibView (Null is an OctetString)
        return ber.typed(wire, None)
    if isinstance(value, univ.Integer):
        return ber.typed(wire, int(value))
    if isinstance(value, univ.OctetString):
        return ber.typed(wire, bytes(value.asOctets()))
    if isinstance(value, univ.ObjectIdentifier):
        return ber.typed(wire, tuple(value))
    raise ber.BerError(f"unexpected {type(value).__name__} in an answer")


class HealthClient:
    """Polls printers through one UDP socket (v1/v2c) and one SnmpEngine (v3) on the running loop.

    Create it inside the loop that will use it; `close()` it on that loop's thread.
    """

    def __init__(self, *, max_repetitions: int = 4) -> None:
        self.max_repetitions = max_repetitions
        self.community = CommunityClient()
        self._engine: SnmpEngine | None = None
        self._addresses: dict[tuple[str, int], Address] = {}
        self._transports: dict[tuple[str, int, float, int], Any] = {}
        self._users: dict[SnmpTarget, UsmUserData] = {}
        self._context = ContextData()

    @property
    def engine(self) -> SnmpEngine:
        if self._engine is None:
            self._engine = SnmpEngine()
        return self._engine

    def close(self) -> None:
        self.community.close()
        if self._engine is not None:
            self._engine.close_dispatcher()

    async def _address(self, target: SnmpTarget) -> Address:
        """The numeric address answers must come from (a host name is resolved once per client)."""
        key = (target.host, target.port)
        address = self._addresses.get(key)
        if address is None:
            numeric = _ipv4(target.host)
            if numeric is None:
                try:
                    found = await asyncio.get_running_loop().getaddrinfo(
                        target.host, target.port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
                except OSError as exc:
                    raise SnmpFailure(f"cannot resolve {target.host}: {exc}") from exc
                numeric = str(found[0][4][0])
            address = self._addresses[key] = (numeric, target.port)
        return address

    async def _v3_transport(self, target: SnmpTarget) -> Any:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            try:
                transport = await _NumericV3Target.create((target.host, target.port), timeout=target.timeout,
                                                          retries=target.retries)
            except PySnmpError as exc:  # unresolvable host name
                raise SnmpFailure(str(exc)) from exc
            self._transports[key] = transport
        return transport

    async def _request(self, kind: str, target: SnmpTarget, oids: list[OID], non_repeaters: int = 0,
                       max_repetitions: int = 0) -> list[tuple[OID, ber.Value]]:
        """One GET / GETNEXT / GETBULK; returns (name, value) pairs or raises SnmpFailure.

        A PDU error (v1 noSuchName and the like) raises _PduError carrying the 1-based index."""
        if target.version == "3":
            return await self._request_v3(kind, target, oids, non_repeaters, max_repetitions)
        address = await self._address(target)
        try:
            pdu = await self.community.request(
                address, ber.V1 if target.version == "1" else ber.V2C, target.community.encode(), _KINDS[kind],
                oids, timeout=target.timeout, retries=target.retries, non_repeaters=non_repeaters,
                max_repetitions=max_repetitions)
        except (NoAnswer, ber.BerError) as exc:
            raise SnmpFailure(str(exc)) from exc
        if pdu.error_status:
            raise _PduError(f"{pdu.error_name} at {pdu.error_index}", pdu.error_index)
        return list(pdu.var_binds)

    async def _request_v3(self, kind: str, target: SnmpTarget, oids: list[OID], non_repeaters: int,
                          max_repetitions: int) -> list[tuple[OID, ber.Value]]:
        transport = await self._v3_transport(target)
        user = self._users.get(target)
        if user is None:
            user = self._users[target] = target.usm_user()
        var_binds = [_oid(o) for o in oids]
        if kind == "get":
            result = await get_cmd(self.engine, user, transport, self._context, *var_binds, lookupMib=False)
        elif kind == "next":
            result = await next_cmd(self.engine, user, transport, self._context, *var_binds, lookupMib=False)
        else:
            result = await bulk_cmd(self.engine, user, transport, self._context, non_repeaters,
                                    max_repetitions, *var_binds, lookupMib=False)
        err_ind, err_stat, err_idx, answer = result
        if err_ind:
            raise SnmpFailure(str(err_ind))
        if err_stat:
            raise _PduError(f"{err_stat.prettyPrint()} at {int(err_idx)}", int(err_idx))
        try:
            return [(tuple(name), _from_pyasn1(value)) for name, value in answer]
        except ber.BerError as exc:
            raise SnmpFailure(f"malformed answer: {exc}") from exc

    async def poll_one(self, target: SnmpTarget, previous: PrinterHealth | None = None, *,
                       supplies: bool = True) -> PrinterHealth:
        """One reading; never raises for network trouble (unreachable → reachable=False, error=...).

        `supplies=False` skips the marker-supplies table (levels change slowly; the fleet poller reads
        them every few cycles) and keeps the previous reading's supplies."""
        started = time.monotonic()
        try:
            if target.version == "1":
                scalars, columns = await self._read_v1(target, supplies)
            else:
                scalars, columns = await self._read_bulk(target, supplies)
            health = _build(target.printer_id, scalars, columns)
            if supplies:
                health.supplies_at = health.polled_at
            elif previous is not None:
                health.supplies, health.supplies_at = previous.supplies, previous.supplies_at
        except SnmpFailure as exc:
            health = PrinterHealth(target.printer_id, reachable=False, polled_at=time.time(), error=str(exc))
        except (OSError, PySnmpError) as exc:  # network unreachable; pysnmp's errors on v3 answers
            health = PrinterHealth(target.printer_id, reachable=False, polled_at=time.time(),
                                   error=f"{type(exc).__name__}: {exc}")
        health.duration = round(time.monotonic() - started, 4)
        return note_reboot(health, previous)

    async def poll_many(self, targets: Iterable[SnmpTarget], *, concurrency: int = DEFAULT_CONCURRENCY,
                        previous: Mapping[str, PrinterHealth] | None = None,
                        supplies: bool | Callable[[SnmpTarget], bool] = True) -> dict[str, PrinterHealth]:
        """Poll every target, at most `concurrency` in flight; one result per printer id.

        `supplies` is a flag or a per-target predicate (read the supplies table for this one?)."""
        semaphore = asyncio.Semaphore(max(1, concurrency))
        previous = previous or {}

        async def one(target: SnmpTarget) -> PrinterHealth:
            want = supplies(target) if callable(supplies) else supplies
            async with semaphore:
                return await self.poll_one(target, previous.get(target.printer_id), supplies=want)

        results = await asyncio.gather(*(one(t) for t in targets))
        return {h.printer_id: h for h in results}

    # --- requests ------------------------------------------------------------------------
    def _scalar_oids(self, target: SnmpTarget) -> list[OID]:
        d = target.device_index
        return [SYS_UPTIME + (0,), HR_DEVICE_STATUS + (d,), HR_PRINTER_STATUS + (d,), HR_PRINTER_ERROR_STATE + (d,)]

    def _column_oids(self, target: SnmpTarget, supplies: bool) -> dict[str, OID]:
        d = target.device_index
        cols = {f"supply.{k}": PRT_MARKER_SUPPLIES + (c, d) for k, c in SUPPLY_COLUMNS.items()} if supplies else {}
        cols.update({f"alert.{k}": PRT_ALERT + (c, d) for k, c in ALERT_COLUMNS.items()})
        return cols

    async def _read_bulk(self, target: SnmpTarget, supplies: bool
                         ) -> tuple[dict[OID, ber.Value], dict[str, dict[OID, ber.Value]]]:
        wanted = self._scalar_oids(target)
        # GETNEXT of "instance minus one" lands exactly on the instance when it exists.
        before = [o[:-1] + (o[-1] - 1,) if o[-1] > 0 else o[:-1] for o in wanted]
        columns = self._column_oids(target, supplies)
        cursor = dict(columns)  # where each unfinished column continues
        rows: dict[str, dict[OID, ber.Value]] = {name: {} for name in columns}
        scalars: dict[OID, ber.Value] = {}
        first = True
        while cursor:
            names = list(cursor)
            nonrep = before if first else []
            # without supplies only the (usually empty) alert table repeats: 2 rows show its end
            repetitions = self.max_repetitions if supplies or not first else 2
            answer = await self._request("bulk", target, [*nonrep, *(cursor[n] for n in names)],
                                         len(nonrep), repetitions)
            if first:
                for oid_wanted, (oid, value) in zip(wanted, answer[: len(nonrep)], strict=False):
                    if oid == oid_wanted and _value_ok(value):
                        scalars[oid_wanted] = value
                first = False
            finished, advanced = _take_columns(names, answer[len(nonrep):], columns, cursor, rows)
            for column in names:
                # more rows may follow only if this answer ended inside the column (not past it)
                if column in finished or column not in advanced or len(rows[column]) >= MAX_TABLE_ROWS:
                    cursor.pop(column)
        return scalars, rows

    async def _read_v1(self, target: SnmpTarget, supplies: bool
                       ) -> tuple[dict[OID, ber.Value], dict[str, dict[OID, ber.Value]]]:
        pending = self._scalar_oids(target)
        scalars: dict[OID, ber.Value] = {}
        while pending:  # v1 fails the whole GET on one missing OID (noSuchName): drop it, ask again
            try:
                answer = await self._request("get", target, pending)
            except _PduError as exc:
                if 0 < exc.index <= len(pending):
                    pending.pop(exc.index - 1)
                    continue
                raise
            scalars.update({oid: v for oid, v in answer if _value_ok(v)})
            break
        columns = self._column_oids(target, supplies)
        cursor = dict(columns)
        rows: dict[str, dict[OID, ber.Value]] = {name: {} for name in columns}
        for _ in range(MAX_TABLE_ROWS * 2):
            if not cursor:
                break
            names = list(cursor)
            try:
                answer = await self._request("next", target, [cursor[n] for n in names])
            except _PduError as exc:  # end of the MIB for one column: that column is done
                if 0 < exc.index <= len(names):
                    cursor.pop(names[exc.index - 1])
                    continue
                raise
            finished, _ = _take_columns(names, answer, columns, cursor, rows)
            for column in finished:
                cursor.pop(column)
        return scalars, rows


def _take_columns(names: list[str], answer: list[tuple[OID, ber.Value]], columns: dict[str, OID],
                  cursor: dict[str, OID], rows: dict[str, dict[OID, ber.Value]]) -> tuple[set[str], set[str]]:
    """File a GETNEXT/GETBULK answer (column-major repetitions) into `rows`; returns (finished, advanced)."""
    finished: set[str] = set()
    advanced: set[str] = set()
    for i, (oid, value) in enumerate(answer):
        column = names[i % len(names)]
        if column in finished:
            continue
        prefix = columns[column]
        if not _value_ok(value) or oid[: len(prefix)] != prefix or oid <= cursor[column]:
            finished.add(column)
            continue
        rows[column][oid[len(prefix):]] = value
        cursor[column] = oid
        advanced.add(column)
    return finished, advanced


def _number(value: ber.Value) -> int | None:
    """An integer-typed value (Integer32, Gauge32, TimeTicks, …); None for any other type an agent sent."""
    return int(value) if isinstance(value, int) else None


def _octets(value: ber.Value) -> bytes | None:
    """An OCTET STRING's bytes (IpAddress and Opaque are octets too); None for any other type an agent sent."""
    return bytes(value) if isinstance(value, bytes) else None


def _text(value: ber.Value) -> str:
    octets = _octets(value)
    return octets.decode("utf-8", "replace") if octets is not None else ""


def _build(printer_id: str, scalars: dict[OID, ber.Value], rows: dict[str, dict[OID, ber.Value]]) -> PrinterHealth:
    # Values are read by their SNMP type: an agent that answers a string where the MIB has a number
    # (or the reverse) gives a missing value, not an exception that would stop the fleet's poll.
    by_prefix = {oid[:-1]: value for oid, value in scalars.items()}
    uptime_ticks = _number(by_prefix.get(SYS_UPTIME))
    error_octets = _octets(by_prefix.get(HR_PRINTER_ERROR_STATE))
    supplies = []
    supply_rows = {k: rows.get(f"supply.{k}", {}) for k in SUPPLY_COLUMNS}
    for index in sorted(set(supply_rows["description"]) | set(supply_rows["level"])):
        level = _number(supply_rows["level"].get(index))
        maximum = _number(supply_rows["max"].get(index))
        supplies.append(Supply.from_values(
            index[-1], _text(supply_rows["description"].get(index)),
            level if level is not None else -2, maximum if maximum is not None else -2))
    alerts = []
    for index in sorted(set(rows["alert.severity"]) | set(rows["alert.code"])):
        severity = _number(rows["alert.severity"].get(index))
        code = _number(rows["alert.code"].get(index))
        alerts.append(Alert(index[-1], severity if severity is not None else 1, code if code is not None else 2,
                            _text(rows["alert.description"].get(index))))
    if not scalars and not any(rows.values()):
        raise SnmpFailure("agent answered but serves no printer objects")
    return PrinterHealth(
        printer_id, reachable=True, polled_at=time.time(),
        uptime=uptime_ticks / 100.0 if uptime_ticks is not None else None,
        device_status=_number(by_prefix.get(HR_DEVICE_STATUS)),
        printer_status=_number(by_prefix.get(HR_PRINTER_STATUS)),
        error_state=error_octets.hex() if error_octets is not None else None,
        error_bits=decode_error_state(error_octets or b""), supplies=supplies, alerts=alerts)


async def poll_one(target: SnmpTarget, previous: PrinterHealth | None = None) -> PrinterHealth:
    """One printer with a throw-away engine (use HealthClient to poll repeatedly)."""
    client = HealthClient()
    try:
        return await client.poll_one(target, previous)
    finally:
        client.close()


async def poll_many(targets: Iterable[SnmpTarget], concurrency: int = DEFAULT_CONCURRENCY,
                    previous: Mapping[str, PrinterHealth] | None = None,
                    client: HealthClient | None = None,
                    supplies: bool | Callable[[SnmpTarget], bool] = True) -> dict[str, PrinterHealth]:
    """Poll all `targets` through one client (the given one, or a new one closed afterwards)."""
    own = client is None
    client = client or HealthClient()
    try:
        return await client.poll_many(targets, concurrency=concurrency, previous=previous, supplies=supplies)
    finally:
        if own:
            client.close()
