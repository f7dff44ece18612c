"""The converged site: testbed hosts built, site.yml run once from empty, every host torn down afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.converge.site import Site, can_build_hosts

HERE = Path(__file__).resolve().parent
ON_DEMAND = ("the converge's long forms (the site changed under load) run on demand: "
             "PULLPRINT_CONVERGE=1 scripts/run tests tests/converge; figures in docs/operations.md")
TURNED_OFF = "PULLPRINT_CONVERGE=0: the converge is turned off for this run (scripts/run tests runs it by default)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # By default (CI): the site converges from empty, a second run changes nothing, it prints, and
    # the fault short form runs against it. PULLPRINT_CONVERGE=1 adds the long forms (marked slow);
    # PULLPRINT_CONVERGE=0 turns the converge off (a developer's quick run).
    wanted = os.environ.get("PULLPRINT_CONVERGE", "")
    for item in items:  # this hook sees the whole session's items, not only this folder's
        if HERE not in item.path.resolve().parents:
            continue
        if wanted == "0":
            item.add_marker(pytest.mark.skip(reason=TURNED_OFF))
        elif wanted != "1" and item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.skip(reason=ON_DEMAND))


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    reason = can_build_hosts()
    if reason:
        pytest.skip(f"CANNOT BUILD TESTBED HOSTS ON THIS MACHINE, the converge is not tested: {reason}")
    reuse = os.environ.get("PULLPRINT_TESTBED_REUSE", "")
    if reuse:
        # Development: ID:WORKDIR of a testbed built earlier (kept, not torn down); its "first" run
        # is then a run onto hosts that converged before, not from empty.
        testbed_id, _, folder = reuse.partition(":")
        kept = Site(testbed_id, Path(folder))
        kept.attach()
        kept.first = kept.playbook()
        yield kept
        return
    built = Site(secrets.token_hex(3), Path(tempfile.mkdtemp(prefix="pullprint-converge-")))
    _STANDING.append(built)
    try:
        built.up()
        built.first = built.playbook()
        yield built
    finally:
        _tear_down(built)


# The site standing, until its last test is done: a session fixture would keep its ten hosts running
# until the whole session ends, beside the tests that the same pytest-xdist worker runs after them.
_STANDING: list[Site] = []


def _tear_down(site: Site) -> None:
    if site in _STANDING:
        _STANDING.remove(site)
        left = site.down()
        shutil.rmtree(site.workdir, ignore_errors=True)
        assert not left, f"the testbed left things behind: {left}"


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or HERE not in nextitem.path.resolve().parents:
        for site in list(_STANDING):
            _tear_down(site)
