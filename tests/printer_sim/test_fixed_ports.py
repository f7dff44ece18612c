"""A printer host on a network: each printer on the raw and SNMP port the operator gave (base + N - 1)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from printer_sim.cluster import start_sim

pytestmark = pytest.mark.integration


def _free_run(count: int, kind: int) -> int:
    """A base port with `count` free ports of `kind` (TCP or UDP) from it up."""
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, kind)
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
        probe.close()
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, kind)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return base
    raise AssertionError("no run of free ports")


def test_each_printer_takes_its_fixed_raw_and_snmp_port(tmp_path):
    raw, snmp = _free_run(3, socket.SOCK_STREAM), _free_run(3, socket.SOCK_DGRAM)
    # p2 answers SNMPv3 only: its port still follows its position, between the v2c printers'.
    with start_sim(3, tmp_path, v3=("p2",), extra_args=["--raw-port", str(raw), "--snmp-port", str(snmp)]) as sim:
        assert [p["uri"] for p in sim.printers] == [f"socket://127.0.0.1:{raw + i}" for i in range(3)]
        assert [p["snmp"] for p in sim.printers] == [f"127.0.0.1:{snmp + i}" for i in range(3)]
        with socket.create_connection(("127.0.0.1", raw + 2), timeout=10) as conn:
            conn.sendall(b"%!PS\n")
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(1) == b""
        assert [f.read_bytes() for f in (tmp_path / "sinks" / "p3").glob("*.prn")] == [b"%!PS\n"]
        answer = subprocess.run(["snmpget", "-On", "-t", "2", "-r", "0", "-v2c", "-c", "public",
                                 f"127.0.0.1:{snmp + 2}", ".1.3.6.1.2.1.1.3.0"],
                                capture_output=True, text=True, timeout=30, check=False)
        assert "Timeticks" in answer.stdout, answer.stdout + answer.stderr
