"""Counts the inputs each fuzz target ran (every call of the hypothesis test body, shrinking included);
lets schemathesis 4.32 run under pytest 9."""

from __future__ import annotations

import functools

import pytest

from tests.fuzz.profile import PROFILE

INPUTS: dict[str, int] = {}


def _counting(nodeid: str, inner):
    @functools.wraps(inner)
    def run(*args, **kwargs):
        INPUTS[nodeid] = INPUTS.get(nodeid, 0) + 1
        return inner(*args, **kwargs)
    return run


def pytest_collection_modifyitems(items):
    for item in items:
        handle = getattr(getattr(item, "obj", None), "hypothesis", None)
        if handle is not None:  # hypothesis documents inner_test as the place to wrap each example's call
            handle.inner_test = _counting(item.nodeid, handle.inner_test)


def count_input(nodeid: str) -> None:
    """For a target hypothesis does not run itself (schemathesis's subtests): one more input."""
    INPUTS[nodeid] = INPUTS.get(nodeid, 0) + 1


def pytest_runtest_setup(item):
    # schemathesis 4.32 reads and writes `item._nodeid`, which pytest 9 no longer has (AttributeError).
    if not hasattr(item, "_nodeid"):
        item._nodeid = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    item.user_properties.append(("inputs", INPUTS.get(item.nodeid, 0)))


def pytest_terminal_summary(terminalreporter):
    counted = {k: v for k, v in INPUTS.items() if v}
    if counted:
        terminalreporter.section(f"fuzz inputs (profile {PROFILE})")
        for nodeid, n in sorted(counted.items()):
            terminalreporter.write_line(f"{n:>10}  {nodeid}")
        terminalreporter.write_line(f"{sum(counted.values()):>10}  total")
