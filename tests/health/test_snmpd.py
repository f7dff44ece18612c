"""The poller's SNMP v1/v2c client against net-snmp's snmpd: another implementation than the simulator's.

The simulator answers through the same codec as the poller (collector/health/ber.py), so a mistake made on
both sides would pass every simulator test. net-snmp's agent and its command-line tools are the outside check:
the client walks snmpd's whole tree and must see what `snmpbulkwalk` sees, with the types `snmpget` names.
"""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from collector.health import ber
from collector.health.community import CommunityClient
from collector.health.snmp import HealthClient, SnmpTarget
from pullprint.daemons import free_udp_port, require, start

pytestmark = pytest.mark.integration

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
MIB2 = (1, 3, 6, 1, 2, 1)
HR_DEVICE_TYPE = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2)
HR_DEVICE_STATUS = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5)


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory):
    require("snmpd", "snmpget", "snmpbulkwalk")
    base = tmp_path_factory.mktemp("snmpd")
    port = free_udp_port()
    conf = base / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\nsysName testagent\n")

    def answers() -> bool:
        return net_snmp("snmpget", port, ".1.3.6.1.2.1.1.5.0", timeout="0.3").returncode == 0

    daemon = start("snmpd", ["snmpd", "-f", "-Lo", "-C", "-c", str(conf), "-p", str(base / "snmpd.pid")],
                   log_path=base / "snmpd.log", ready=answers, timeout=20)
    yield port
    daemon.stop()


def net_snmp(tool: str, port: int, *oids: str, version: str = "2c", timeout: str = "2") -> subprocess.CompletedProcess:
    return subprocess.run([tool, "-On", f"-v{version}", "-c", "public", "-t", timeout, "-r", "0",
                           f"127.0.0.1:{port}", *oids], capture_output=True, text=True, check=False)


def dotted(oid: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, oid))


async def walk(client: CommunityClient, port: int, version: int, root: tuple[int, ...]) -> list[ber.VarBind]:
    """Every binding under `root`: GETBULK (25 at a time) in v2c, GETNEXT in v1."""
    found: list[ber.VarBind] = []
    cursor = root
    while True:
        if version == ber.V2C:
            pdu = await client.request(("127.0.0.1", port), version, b"public", ber.GETBULK, [cursor],
                                       timeout=2, retries=1, max_repetitions=25)
        else:
            pdu = await client.request(("127.0.0.1", port), version, b"public", ber.GETNEXT, [cursor],
                                       timeout=2, retries=1)
        if pdu.error_status:  # v1: noSuchName past the end of the MIB
            assert version == ber.V1 and pdu.error_status == ber.NO_SUCH_NAME
            return found
        for name, value in pdu.var_binds:
            if value is ber.Missing.END_OF_MIB_VIEW or name[: len(root)] != root:
                return found
            assert name > cursor
            found.append((name, value))
            cursor = name


def run_walk(port: int, version: int, root: tuple[int, ...]) -> list[ber.VarBind]:
    async def go() -> list[ber.VarBind]:
        client = CommunityClient()
        try:
            return await walk(client, port, version, root)
        finally:
            client.close()

    return asyncio.run(go())


def test_the_client_walks_what_snmpbulkwalk_walks(snmpd):
    ours = run_walk(snmpd, ber.V2C, MIB2)
    theirs = re.findall(r"^(\.1\.3\.6\.1\.2\.1\.[0-9.]+) = ", net_snmp("snmpbulkwalk", snmpd, dotted(MIB2)).stdout,
                        re.MULTILINE)
    assert len(ours) > 100
    # counters and tables may grow between the two walks (a connection, an ARP entry): compare the stable part
    stable = (1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1, 2), (1, 3, 6, 1, 2, 1, 25, 3, 2)
    mine = [dotted(oid) for oid, _ in ours if oid[:7] == stable[0] or oid[:10] == stable[1] or oid[:9] == stable[2]]
    assert mine == [o for o in theirs if any(o.startswith(dotted(s) + ".") for s in stable)]


def test_every_type_net_snmp_sends_reads_as_snmpget_names_it(snmpd):
    ours = dict(run_walk(snmpd, ber.V2C, MIB2))
    labels = {ber.TimeTicks: "Timeticks", ber.Counter32: "Counter32", ber.Gauge32: "Gauge32",
              ber.Counter64: "Counter64", ber.IpAddress: "IpAddress", tuple: "OID", int: "INTEGER"}
    seen = set()
    for wanted, label in labels.items():
        oid = next((o for o, v in ours.items() if type(v) is wanted), None)
        assert oid is not None, f"snmpd served no {label}"
        line = net_snmp("snmpget", snmpd, dotted(oid)).stdout
        assert f"= {label}: " in line, line
        seen.add(label)
        if wanted is ber.IpAddress:
            assert ".".join(map(str, ours[oid])) in line  # type: ignore[arg-type]
        if wanted is tuple:
            assert dotted(ours[oid]) in line  # type: ignore[arg-type]
    assert ours[SYSTEM + (5, 0)] == b"testagent"
    missing = asyncio.run(_get(snmpd, ber.V2C, [SYSTEM + (5, 1), (1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 16, 1)]))
    assert [v for _, v in missing.var_binds] == [ber.Missing.NO_SUCH_INSTANCE, ber.Missing.NO_SUCH_OBJECT]
    v1_missing = asyncio.run(_get(snmpd, ber.V1, [SYSTEM + (3, 0), SYSTEM + (5, 1)]))
    assert (v1_missing.error_name, v1_missing.error_index) == ("noSuchName", 2)


async def _get(port: int, version: int, oids: list[tuple[int, ...]]) -> ber.Pdu:
    client = CommunityClient()
    try:
        return await client.request(("127.0.0.1", port), version, b"public", ber.GET, oids, timeout=2, retries=1)
    finally:
        client.close()


def test_v1_walk_matches_v2c_without_the_64_bit_counters(snmpd):
    v2c = run_walk(snmpd, ber.V2C, SYSTEM)
    v1 = run_walk(snmpd, ber.V1, SYSTEM)
    assert [o for o, _ in v1] == [o for o, _ in v2c]
    assert not any(isinstance(v, (ber.Counter64, ber.Missing)) for _, v in v1)


@pytest.mark.parametrize("version", ["1", "2c"])
def test_a_health_reading_of_a_host_that_is_no_printer(snmpd, version):
    devices = run_walk(snmpd, ber.V2C, HR_DEVICE_TYPE)
    assert devices, "snmpd serves hrDeviceTable"
    index = devices[0][0][-1]
    status = net_snmp("snmpget", snmpd, dotted(HR_DEVICE_STATUS + (index,))).stdout
    uptime = net_snmp("snmpget", snmpd, ".1.3.6.1.2.1.1.3.0").stdout
    match = re.search(r"Timeticks: \((\d+)\)", uptime)
    assert match, uptime
    ticks = int(match.group(1))

    async def read():
        client = HealthClient()
        try:
            target = SnmpTarget("host", "127.0.0.1", snmpd, version=version, device_index=index, timeout=2)
            return await client.poll_one(target)
        finally:
            client.close()

    health = asyncio.run(read())
    # sysUpTime and hrDeviceStatus are there; the printer objects are not (v1: noSuchName, dropped one by one)
    assert health.reachable, health.error
    assert ticks / 100 <= health.uptime < ticks / 100 + 5
    assert f"INTEGER: {health.device_status}" in status or f"({health.device_status})" in status
    assert (health.printer_status, health.error_state, health.supplies, health.alerts) == (None, None, [], [])
