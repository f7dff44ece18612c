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
ON_DEMAND = ("the full-site converge runs on demand: PULLPRINT_CONVERGE=1 scripts/run tests tests/converge; "
             "figures in docs/operations.md")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Nine hosts and three site.yml runs take far longer than the default suite's budget: only when asked.
    if os.environ.get("PULLPRINT_CONVERGE") == "1":
        return
    skip = pytest.mark.skip(reason=ON_DEMAND)
    for item in items:  # this hook sees the whole session's items, not only this folder's
        if HERE in item.path.resolve().parents:
            item.add_marker(skip)


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
    workdir = Path(tempfile.mkdtemp(prefix="pullprint-converge-"))
    built = Site(secrets.token_hex(3), workdir)
    try:
        built.up()
        built.first = built.playbook()
        yield built
    finally:
        left = built.down()
        shutil.rmtree(workdir, ignore_errors=True)
        assert not left, f"the testbed left things behind: {left}"
