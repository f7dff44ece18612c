"""Printers whose SNMP agents misbehave, on real UDP sockets: a poll gives unreachable with the reason, never raises.

Each agent answers the poller's datagram with the simulator's genuine answer (printer_sim's responder),
damaged or misdirected in one way. Datagrams that do not answer the request (wrong request id, another
source port, another community or version, not a Response, malformed) are ignored, so the request times
out; when they came from the printer, the timeout names the last reason.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from collector.health import ber
from collector.health.community import CommunityClient, NoAnswer
from collector.health.snmp import HealthClient, SnmpTarget
from printer_sim.snmp_agent import CommunityResponder
from printer_sim.state import PrinterState

TIMEOUT = 0.2
Reply = tuple[bytes, str]  # (datagram, "same" or "other" socket)
Behaviour = Callable[[bytes, ber.Message, bytes], list[Reply]]  # (request, decoded, genuine answer)


class HostileAgent(asyncio.DatagramProtocol):
    """One printer's agent whose answers `behaviour` makes from the genuine ones."""

    def __init__(self, behaviour: Behaviour, delay: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay = delay
        self.genuine = CommunityResponder(PrinterState("h1"), "public")
        self.requests: list[ber.Message] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.other: socket.socket | None = None

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        return self.transport.get_extra_info("sockname")

    def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.other is not None:
            self.other.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = ber.decode_message(data)
        self.requests.append(request)
        replies = self.behaviour(data, request, self.genuine.answer(data) or b"")
        asyncio.get_running_loop().call_later(self.delay if len(self.requests) == 1 else 0, self._send, replies, addr)

    def _send(self, replies: list[Reply], addr: tuple[str, int]) -> None:
        for datagram, via in replies:
            if via == "other" and self.other is not None:
                self.other.sendto(datagram, addr)
            elif self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(datagram, addr)


def rewrite(genuine: bytes, **changes: object) -> bytes:
    """The genuine answer with message or PDU fields changed."""
    message = ber.decode_message(genuine)
    pdu_fields = {k: changes.pop(k) for k in list(changes) if k in ("kind", "request_id", "error_status",
                                                                    "error_index", "var_binds")}
    pdu = ber.Pdu(**{**{f: getattr(message.pdu, f) for f in ber.Pdu.__dataclass_fields__}, **pdu_fields})
    fields = {"version": message.version, "community": message.community, **changes, "pdu": pdu}
    return ber.encode_message(ber.Message(**fields))  # type: ignore[arg-type]


async def poll(behaviour: Behaviour, *, version: str = "2c", delay: float = 0.0, retries: int = 1):
    agent = HostileAgent(behaviour, delay)
    host, port = await agent.start()
    client = HealthClient()
    try:
        target = SnmpTarget("h1", host, port, version=version, timeout=TIMEOUT, retries=retries)
        health = await client.poll_one(target)
        return health, agent, dict(client.community.dropped)
    finally:
        client.close()
        agent.stop()


def run(behaviour: Behaviour, **kwargs):
    return asyncio.run(poll(behaviour, **kwargs))


def many_bindings(genuine: bytes) -> bytes:
    return rewrite(genuine, var_binds=tuple(((1, 3, 6, 1, 4, 1, i), None) for i in range(ber.MAX_VAR_BINDS + 1)))


DAMAGED: dict[str, tuple[Behaviour, str]] = {
    "garbage": (lambda raw, req, genuine: [(b"\xff" * 12, "same")], "malformed answer"),
    "truncated": (lambda raw, req, genuine: [(genuine[:-3], "same")], "truncated"),
    "oversized claim": (lambda raw, req, genuine: [(b"\x30\x83\x01\x00\x00" + genuine[2:], "same")], "truncated"),
    "too many bindings": (lambda raw, req, genuine: [(many_bindings(genuine), "same")], "variable bindings"),
    "request id not asked for": (
        lambda raw, req, genuine: [(rewrite(genuine, request_id=(req.pdu.request_id + 1) % 2**31), "same")],
        "request id not asked for"),
    "another community": (lambda raw, req, genuine: [(rewrite(genuine, community=b"private"), "same")],
                          "does not answer"),
    "SNMPv1 answer to v2c": (lambda raw, req, genuine: [(rewrite(genuine, version=ber.V1, var_binds=()), "same")],
                             "does not answer"),
    "the request echoed": (lambda raw, req, genuine: [(raw, "same")], "does not answer"),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_or_mismatched_answer_is_unreachable_with_the_reason(name):
    behaviour, reason = DAMAGED[name]
    health, agent, _ = run(behaviour)
    assert not health.reachable
    assert "timeout" in health.error.lower() and reason in health.error, health.error
    assert len(agent.requests) == 2  # the retry was sent, and answered as badly
    assert TIMEOUT * 2 <= health.duration < TIMEOUT * 2 + 1.0


def test_an_answer_from_another_port_is_ignored_and_tells_nothing():
    health, agent, dropped = run(lambda raw, req, genuine: [(genuine, "other")])
    assert not health.reachable and health.error == "No SNMP response received before timeout"
    assert dropped == {"wrong-address": 2}


def test_the_right_answer_after_wrong_ones_is_taken():
    def behaviour(raw, req, genuine):
        wrong_id = rewrite(genuine, request_id=(req.pdu.request_id + 7) % 2**31)
        return [(b"\x00garbage", "same"), (wrong_id, "same"), (genuine, "other"), (genuine, "same")]

    health, agent, dropped = run(behaviour)
    assert health.reachable and health.device_status == 2 and len(health.supplies) == 3
    assert len(agent.requests) == 1
    assert dropped == {"malformed": 1, "unknown-request-id": 1, "wrong-address": 1}


def test_a_duplicated_answer_is_one_reading():
    async def twice():
        agent = HostileAgent(lambda raw, req, genuine: [(genuine, "same"), (genuine, "same")])
        host, port = await agent.start()
        client = HealthClient()
        try:
            first = await client.poll_one(SnmpTarget("h1", host, port, timeout=TIMEOUT))
            second = await client.poll_one(SnmpTarget("h1", host, port, timeout=TIMEOUT))
            return first, second, dict(client.community.dropped)
        finally:
            client.close()
            agent.stop()

    first, second, dropped = asyncio.run(twice())
    assert first.reachable and second.reachable
    # the copy arrives in the same wake-up as the answer, or after the request is done (the last one's maybe
    # after the client closed)
    assert set(dropped) <= {"duplicate", "unknown-request-id"} and 1 <= sum(dropped.values()) <= 2


def test_a_silent_first_try_is_answered_on_the_retry_with_the_same_request_id():
    tries: list[int] = []

    def behaviour(raw, req, genuine):
        tries.append(req.pdu.request_id)
        return [(genuine, "same")] if len(tries) > 1 else []

    health, agent, _ = run(behaviour)
    assert health.reachable and TIMEOUT <= health.duration < TIMEOUT + 0.5
    assert len(tries) == 2 and tries[0] == tries[1]


def test_a_late_answer_to_the_first_try_counts():
    tries: list[int] = []

    def behaviour(raw, req, genuine):  # the first try's answer comes after the retry went out; the retry's never
        tries.append(req.pdu.request_id)
        return [(genuine, "same")] if len(tries) == 1 else []

    health, agent, _ = run(behaviour, delay=TIMEOUT * 1.5)
    assert health.reachable and TIMEOUT * 1.5 <= health.duration < TIMEOUT * 2
    assert len(tries) == 2


def test_no_retry_when_retries_is_zero():
    health, agent, _ = run(lambda raw, req, genuine: [], retries=0)
    assert not health.reachable and len(agent.requests) == 1


@pytest.mark.parametrize(("version", "status", "index", "error"), [
    ("2c", ber.GEN_ERR, 0, "genErr at 0"),
    ("2c", 99, 1, "errorStatus 99 at 1"),
    ("1", ber.NO_SUCH_NAME, 9, "noSuchName at 9"),  # v1: an index that names no variable asked for
])
def test_a_pdu_error_for_the_whole_request_is_unreachable(version, status, index, error):
    health, _, _ = run(lambda raw, req, genuine: [(rewrite(genuine, error_status=status, error_index=index), "same")],
                       version=version)
    assert not health.reachable and health.error == error


def test_v1_exception_values_are_malformed():
    def behaviour(raw, req, genuine):  # a v1 Response cannot carry noSuchInstance: hand-patch the tag
        answer = rewrite(genuine, var_binds=((req.pdu.var_binds[0][0], None),))
        return [(answer[:-2] + b"\x81\x00", "same")]

    health, _, _ = run(behaviour, version="1")
    assert not health.reachable and "SNMPv1 has no value" in health.error


def test_a_fleet_of_hostile_agents_gives_one_reading_each():
    behaviours = [b for b, _ in DAMAGED.values()] + [lambda raw, req, genuine: [(genuine, "same")]] * 3

    async def fleet():
        agents = [HostileAgent(b) for b in behaviours]
        addresses = [await a.start() for a in agents]
        targets = [SnmpTarget(f"h{i}", host, port, timeout=TIMEOUT, retries=0, version="1" if i % 2 else "2c")
                   for i, (host, port) in enumerate(addresses)]
        targets.append(SnmpTarget("nobody", "127.0.0.1", 9, timeout=TIMEOUT, retries=0))
        targets.append(SnmpTarget("port-zero", "127.0.0.1", 0, timeout=TIMEOUT, retries=0))
        client = HealthClient()
        try:
            return await client.poll_many(targets, concurrency=4)
        finally:
            client.close()
            for agent in agents:
                agent.stop()

    readings = asyncio.run(fleet())
    assert len(readings) == len(behaviours) + 2
    assert sum(h.reachable for h in readings.values()) == 3
    assert all(h.error for h in readings.values() if not h.reachable)
    assert readings["port-zero"].error.startswith("OSError")  # refused by the kernel at once, no timeout wait
    assert readings["port-zero"].duration < TIMEOUT


def test_closing_the_client_ends_requests_in_flight():
    async def scenario():
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        client = CommunityClient()
        try:
            request = asyncio.ensure_future(client.request(silent.getsockname(), ber.V2C, b"public", ber.GET,
                                                           [(1, 3, 6, 1, 2, 1, 1, 3, 0)], timeout=30, retries=0))
            await asyncio.sleep(0.05)
            client.close()
            with pytest.raises(NoAnswer, match="closed"):
                await asyncio.wait_for(request, 1)
        finally:
            silent.close()

    asyncio.run(scenario())
