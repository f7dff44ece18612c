"""SNMP v1/v2c requests to many printers over one UDP socket on the running asyncio loop.

Each request gets a random request id, a timer per try and `retries` resends of the same bytes
(an answer to an earlier try still counts). A datagram completes a request only when it decodes
(collector/health/ber.py), carries that request's id, comes from the address and port the
request went to, and is a Response of the same version and community; anything else is dropped
and counted in `CommunityClient.dropped`. A request that got only unusable datagrams from its
printer times out with the last reason in its error.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.health import ber

log = logging.getLogger("pullprint.collector.health")

Address = tuple[str, int]
TIMEOUT_MESSAGE = "No SNMP response received before timeout"
# Answers to every request in flight may queue while the loop is busy; a dropped answer costs a
# resend one timeout later. The kernel caps this at net.core.rmem_max (4 MiB on Debian 12).
RECEIVE_BUFFER = 4 * 1024 * 1024
_DRAIN_BATCH = 256  # datagrams read per wake-up before timers get their turn


class NoAnswer(Exception):
    """No usable answer within timeout × (retries + 1)."""


@dataclass(eq=False)
class _Exchange:
    address: Address
    version: int
    community: bytes
    data: bytes
    future: asyncio.Future[ber.Pdu]
    timeout: float
    tries_left: int
    timer: asyncio.TimerHandle | None = None
    problem: str | None = None
    siblings: list[_Exchange] = field(default_factory=list)  # every exchange to this address


class CommunityClient:
    """One UDP socket for every v1/v2c request of one event loop. Use and `close()` it on that loop."""

    def __init__(self, *, receive_buffer: int = RECEIVE_BUFFER) -> None:
        self.receive_buffer = receive_buffer
        self.dropped: Counter[str] = Counter()  # why datagrams were ignored (tests, debugging)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._pending: dict[int, _Exchange] = {}
        self._by_address: dict[Address, list[_Exchange]] = {}

    def _open(self) -> socket.socket:
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            sock.bind(("0.0.0.0", 0))  # noqa: S104 - a client socket: printers answer to it wherever they are
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return sock

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        for exchange in list(self._pending.values()):
            if not exchange.future.done():
                exchange.future.set_exception(NoAnswer("the SNMP client was closed"))

    async def request(self, address: Address, version: int, community: bytes, kind: int, oids: Sequence[ber.OID],
                      *, timeout: float, retries: int, non_repeaters: int = 0, max_repetitions: int = 0) -> ber.Pdu:
        """Send one request to `address` (a numeric IPv4 address and port) and return the answer's PDU.

        Raises NoAnswer, OSError (the datagram could not be sent) or BerError (unencodable request)."""
        sock = self._sock or self._open()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the socket's reader lives on the loop that opened it
            raise RuntimeError("a CommunityClient serves the event loop it was first used on")
        request_id = secrets.randbits(31)
        while request_id in self._pending:
            request_id = secrets.randbits(31)
        data = ber.encode_request(version, community, kind, request_id, oids, non_repeaters, max_repetitions)
        siblings = self._by_address.setdefault(address, [])
        exchange = _Exchange(address, version, community, data, loop.create_future(), timeout, max(0, retries),
                             siblings=siblings)
        self._pending[request_id] = exchange
        siblings.append(exchange)
        try:
            self._send(sock, exchange)
            return await exchange.future
        finally:
            if exchange.timer is not None:
                exchange.timer.cancel()
            del self._pending[request_id]
            siblings.remove(exchange)
            if not siblings:
                del self._by_address[address]

    def _send(self, sock: socket.socket, exchange: _Exchange) -> None:
        assert self._loop is not None
        try:
            sock.sendto(exchange.data, exchange.address)
        except (BlockingIOError, InterruptedError):
            pass  # send buffer full: as good as lost on the way, the next try resends
        except OSError as exc:  # no route, bad address: no use waiting for the timeout
            if not exchange.future.done():
                exchange.future.set_exception(exc)
            return
        exchange.timer = self._loop.call_later(exchange.timeout, self._expired, exchange)

    def _expired(self, exchange: _Exchange) -> None:
        if exchange.future.done():
            return
        if exchange.tries_left > 0 and self._sock is not None:
            exchange.tries_left -= 1
            self._send(self._sock, exchange)
            return
        why = f" ({exchange.problem})" if exchange.problem else ""
        exchange.future.set_exception(NoAnswer(TIMEOUT_MESSAGE + why))

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(_DRAIN_BATCH):
            if sock is None:
                return
            try:
                data, address = sock.recvfrom(ber.MAX_MESSAGE_SIZE + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error queued on the socket; the request's timer decides
                log.debug("SNMP socket error: %s", exc)
                continue
            self._received(data, address)
            sock = self._sock

    def _received(self, data: bytes, address: Address) -> None:
        try:
            message = ber.decode_message(data)
        except ber.BerError as exc:
            self._drop(address, "malformed", f"malformed answer: {exc}")
            return
        pdu = message.pdu
        exchange = self._pending.get(pdu.request_id)
        if exchange is None:
            self._drop(address, "unknown-request-id", "an answer with a request id not asked for")
        elif exchange.address != address:
            self.dropped["wrong-address"] += 1  # someone else's datagram: it tells nothing about the printer
        elif pdu.kind != ber.RESPONSE or message.version != exchange.version \
                or message.community != exchange.community:
            self._drop(address, "mismatch", f"a {ber.PDU_KINDS[pdu.kind]} (version {message.version}) "
                                             "that does not answer the request")
        elif exchange.future.done():
            self.dropped["duplicate"] += 1  # answered already, its task has not run yet
        else:
            exchange.future.set_result(pdu)

    def _drop(self, address: Address, reason: str, problem: str) -> None:
        self.dropped[reason] += 1
        for exchange in self._by_address.get(address, ()):
            exchange.problem = problem
