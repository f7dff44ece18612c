"""SNMP agents for many simulated printers in one process, one UDP port per printer (v1, v2c, v3 USM).

A real fleet has one address per printer, so each simulated printer gets its own UDP port on the
one asyncio loop (2,000 printers = 2,000 sockets, fine for epoll).

- v1/v2c printers: a lean command responder per port on the collector's BER codec
  (collector/health/ber.py, pure, no I/O). pysnmp's full SnmpEngine costs several milliseconds per
  request in message processing alone, and its protocol API (pyasn1) still about 1 ms; 2,000
  printers polled every few seconds on the poller's machine need the lean path (measured, see
  docs/printers.md).
- v3 (USM) printers: the full pysnmp SnmpEngine (it does engine-id discovery, authentication,
  privacy, time windows), one engine owning one transport per v3 printer. Its MIB is a small
  instrumentation object answering from `PrinterState`: alert rows come and go with faults, which a
  static pysnmp MIB tree cannot do cheaply.
"""

from __future__ import annotations

import asyncio
import bisect
import socket
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import error as smi_error

from collector.health import ber
from printer_sim.state import PrinterState

MAX_BULK_VARBINDS = 64  # like pysnmp's own responder: keeps answers well inside one datagram

_DOMAIN_BASE = udp.DOMAIN_NAME  # printer i listens on domain DOMAIN_NAME + (i,)

AUTH_PROTOCOLS = {"SHA": config.USM_AUTH_HMAC96_SHA, "MD5": config.USM_AUTH_HMAC96_MD5,
                  "SHA256": config.USM_AUTH_HMAC192_SHA256, "NONE": config.USM_AUTH_NONE}
PRIV_PROTOCOLS = {"AES": config.USM_PRIV_CFB128_AES, "DES": config.USM_PRIV_CBC56_DES,
                  "NONE": config.USM_PRIV_NONE}


@dataclass
class SnmpSettings:
    """How one printer's agent is reached: version "1"/"2c" with a community, or "3" with a USM user."""

    version: str = "2c"
    community: str = "public"
    user: str = ""
    auth_protocol: str = "SHA"
    auth_key: str = ""
    priv_protocol: str = "AES"
    priv_key: str = ""

    def describe(self) -> dict[str, str]:
        if self.version == "3":
            return {"snmp_version": "3", "snmp_v3_user": self.user, "snmp_v3_auth_protocol": self.auth_protocol,
                    "snmp_v3_auth_key": self.auth_key, "snmp_v3_priv_protocol": self.priv_protocol,
                    "snmp_v3_priv_key": self.priv_key}
        return {"snmp_version": "2c", "snmp_community": self.community}


class _Drop(smi_error.PySnmpError):
    """Raised from the instrumentation: the command responder then sends no answer at all."""


def _typed(kind: str, value: object, state: PrinterState) -> ber.Value:
    """A MIB entry of `PrinterState.mib()` as an SNMP value."""
    if kind == "int":
        return int(value)  # type: ignore[call-overload]
    if kind == "str":
        return str(value).encode()
    if kind == "bytes":
        return bytes(value)  # type: ignore[call-overload]
    if kind == "oid":
        return tuple(value)  # type: ignore[arg-type]
    if kind == "ticks":
        return ber.TimeTicks(value)  # type: ignore[call-overload]
    if kind == "uptime":
        return ber.TimeTicks(state.uptime_ticks() % (2**32))
    raise ValueError(kind)


_PYSNMP_TYPES: dict[type, Any] = {int: rfc1902.Integer32, bytes: rfc1902.OctetString, tuple: rfc1902.ObjectIdentifier,
                                  ber.TimeTicks: rfc1902.TimeTicks}


def _pysnmp_value(kind: str, value: object, state: PrinterState) -> object:
    """The same value as a pysnmp object, for the v3 engine."""
    typed = _typed(kind, value, state)
    return _PYSNMP_TYPES[type(typed)](typed)


class CommunityResponder(asyncio.DatagramProtocol):
    """One printer's v1/v2c agent: GET, GETNEXT, GETBULK; SET is refused; bad community is ignored."""

    def __init__(self, state: PrinterState, community: str) -> None:
        self.state = state
        self.community = community.encode()
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.state.snmp_respond:
            return  # switched-off agent: silence, the manager times out
        try:
            answer = self.answer(data)
        except ber.BerError:
            return  # garbage in (or v3 to a community-only printer), nothing out, like a real agent
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)
            self.answered += 1

    def answer(self, data: bytes) -> bytes | None:
        request = ber.decode_message(data)
        if request.community != self.community:
            return None
        pdu = request.pdu
        if pdu.kind == ber.RESPONSE:
            return None  # an agent never answers an answer
        mib, order = self.state.mib()
        v1 = request.version == ber.V1
        oids = [oid for oid, _ in pdu.var_binds]
        out: list[ber.VarBind] = []

        def reply(var_binds: tuple[ber.VarBind, ...] | list[ber.VarBind], status: int = 0, index: int = 0) -> bytes:
            return ber.encode_message(ber.Message(request.version, request.community,
                                                  ber.Pdu(ber.RESPONSE, pdu.request_id, status, index,
                                                          tuple(var_binds))))

        def error(status: int, index: int) -> bytes:
            return reply([(oid, None) for oid in oids], status, index)

        def next_of(oid: tuple[int, ...]) -> tuple[int, ...] | None:
            position = bisect.bisect_right(order, oid)
            return order[position] if position < len(order) else None

        if pdu.kind == ber.GET:
            for i, oid in enumerate(oids, 1):
                entry = mib.get(oid)
                if entry is None:
                    if v1:
                        return error(ber.NO_SUCH_NAME, i)
                    out.append((oid, ber.Missing.NO_SUCH_INSTANCE))
                else:
                    out.append((oid, _typed(*entry, self.state)))
        elif pdu.kind == ber.GETNEXT:
            for i, oid in enumerate(oids, 1):
                found = next_of(oid)
                if found is None:
                    if v1:
                        return error(ber.NO_SUCH_NAME, i)
                    out.append((oid, ber.Missing.END_OF_MIB_VIEW))
                else:
                    out.append((found, _typed(*mib[found], self.state)))
        elif pdu.kind == ber.GETBULK:  # v2c only: the codec refuses a v1 GetBulk
            non_repeaters = max(0, pdu.error_status)
            repetitions = max(0, pdu.error_index)
            head, repeaters = oids[:non_repeaters], oids[non_repeaters:]
            for oid in head:
                found = next_of(oid)
                out.append((found, _typed(*mib[found], self.state)) if found else (oid, ber.Missing.END_OF_MIB_VIEW))
            cursor = list(repeaters)
            for _ in range(repetitions):
                if not cursor or len(out) + len(cursor) > MAX_BULK_VARBINDS:
                    break
                ended = 0
                for j, oid in enumerate(cursor):
                    found = next_of(oid)
                    if found is None:
                        ended += 1
                        out.append((oid, ber.Missing.END_OF_MIB_VIEW))
                    else:
                        out.append((found, _typed(*mib[found], self.state)))
                        cursor[j] = found
                if ended == len(cursor):
                    break
        else:  # SET: a read-only agent
            return error(ber.NO_SUCH_NAME if v1 else ber.NOT_WRITABLE, 1)
        return reply(out)


class PrinterInstrumentation:
    """Stands in for pysnmp's MibInstrumController: GET / GETNEXT answered from PrinterState."""

    def __init__(self, printers: list[tuple[PrinterState, SnmpSettings]]) -> None:
        self.printers = printers

    def _printer(self, ctx: dict) -> PrinterState:
        snmp_engine = ctx["snmpEngine"]
        exec_ctx = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        domain = tuple(exec_ctx["transportDomain"])
        index = domain[len(_DOMAIN_BASE)] if domain[: len(_DOMAIN_BASE)] == _DOMAIN_BASE else -1
        if not 0 <= index < len(self.printers):
            raise _Drop("request on an unknown transport")
        state, settings = self.printers[index]
        if exec_ctx["securityModel"] != 3:  # the engine holds no communities; belt and braces
            raise _Drop("a v3-only printer ignores community requests")
        if not state.snmp_respond:
            raise _Drop("printer agent is switched off")
        return state

    def read_variables(self, *var_binds, **ctx):
        state = self._printer(ctx)
        mib, _ = state.mib()
        out = []
        for name, _val in var_binds:
            entry = mib.get(tuple(name))
            out.append((name, _pysnmp_value(*entry, state) if entry else rfc1905.noSuchInstance))
        return out

    def read_next_variables(self, *var_binds, **ctx):
        state = self._printer(ctx)
        mib, order = state.mib()
        out = []
        for name, _val in var_binds:
            position = bisect.bisect_right(order, tuple(name))
            if position < len(order):
                oid = order[position]
                out.append((rfc1902.ObjectName(oid), _pysnmp_value(*mib[oid], state)))
            else:
                out.append((name, rfc1905.endOfMibView))
        return out

    def write_variables(self, *var_binds, **ctx):
        raise smi_error.NotWritableError(name=var_binds[0][0] if var_binds else None, idx=0)


class SnmpAgent:
    """Every printer's agent on the running asyncio loop: lean responders for v1/v2c, one engine for v3."""

    def __init__(self, printers: list[tuple[PrinterState, SnmpSettings]], host: str = "127.0.0.1",
                 base_port: int = 0) -> None:
        self.printers = printers
        self.host = host
        self.base_port = base_port  # printer i answers on base_port + i; 0: any free port each
        self.ports: list[int] = []
        self.engine: engine.SnmpEngine | None = None
        self._endpoints: list[asyncio.DatagramTransport] = []

    def _bind(self, index: int) -> socket.socket:
        # port 0: the kernel picks a free port, no race between choosing and binding
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self.base_port + index if self.base_port else 0))
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        v3 = [(state, s) for state, s in self.printers if s.version == "3"]
        v3_ports = await self._start_engine(v3) if v3 else []
        v3_iter = iter(v3_ports)
        for index, (state, settings) in enumerate(self.printers):
            if settings.version == "3":
                self.ports.append(next(v3_iter))
                continue
            sock = self._bind(index)
            self.ports.append(sock.getsockname()[1])
            def responder(state: PrinterState = state, settings: Any = settings) -> CommunityResponder:
                return CommunityResponder(state, settings.community)

            transport, _ = await loop.create_datagram_endpoint(responder, sock=sock)
            self._endpoints.append(transport)

    async def _start_engine(self, printers: list[tuple[PrinterState, SnmpSettings]]) -> list[int]:
        eng = engine.SnmpEngine()
        self.engine = eng
        users = {s.user: s for _, s in printers}
        for user, s in users.items():
            config.add_v3_user(eng, user, AUTH_PROTOCOLS[s.auth_protocol.upper()], s.auth_key or None,
                               PRIV_PROTOCOLS[s.priv_protocol.upper()], s.priv_key or None)
            level = "authPriv" if s.priv_key else "authNoPriv" if s.auth_key else "noAuthNoPriv"
            config.add_vacm_user(eng, 3, user, level, (1, 3, 6, 1))
        ports, pending = [], []
        indexes = [i for i, (_, s) in enumerate(self.printers) if s.version == "3"]
        for i, _ in enumerate(printers):
            sock = self._bind(indexes[i])
            ports.append(sock.getsockname()[1])
            transport = udp.UdpTransport().open_server_mode(sock=sock)
            config.add_transport(eng, _DOMAIN_BASE + (i,), transport)
            pending.append(transport._lport)
        await asyncio.gather(*[p for p in pending if p is not None])
        snmp_context = context.SnmpContext(eng)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", PrinterInstrumentation(printers))
        cmdrsp.GetCommandResponder(eng, snmp_context)
        cmdrsp.NextCommandResponder(eng, snmp_context)
        cmdrsp.BulkCommandResponder(eng, snmp_context)
        return ports

    def stop(self) -> None:
        for transport in self._endpoints:
            transport.close()
        self._endpoints.clear()
        if self.engine is not None:
            self.engine.close_dispatcher()
            self.engine = None
