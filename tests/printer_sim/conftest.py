"""A running simulator (3 printers, p3 answers only SNMPv3) shared by the tests of this folder."""

from __future__ import annotations

import pytest

from printer_sim.cluster import start_sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    handle = start_sim(3, tmp_path_factory.mktemp("sim"), v3=("p3",))
    yield handle
    handle.stop()
    assert handle.daemon.process.returncode == 0, handle.daemon.log_tail()


@pytest.fixture(autouse=True)
def _reset(sim):
    yield
    for printer in sim.printers:
        sim.control.clear(printer["id"])
        sim.control.sink(printer["id"], stall=False, refuse=False, delay_seconds=0)
        sim.control.snmp(printer["id"], respond=True, error_state_bytes=2)
