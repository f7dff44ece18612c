"""A request's deadline bounds the collector's Redis calls (a real Redis), and optional calls skip a slow one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis as redis_lib

from collector import redis_client
from collector.redis_client import _Optional, optional
from nodeserver.client import deadline


@pytest.fixture(autouse=True)
def fresh_skip() -> Iterator[None]:
    _Optional.skip_until = 0.0
    yield
    _Optional.skip_until = 0.0


def test_a_redis_call_inside_a_deadline_ends_with_it_and_the_client_goes_on(redis_server) -> None:
    client = redis_server.client("admin", socket_timeout=5, retry=None, decode_responses=True)
    try:
        started = time.monotonic()
        with deadline(0.3), pytest.raises(redis_lib.exceptions.TimeoutError):
            client.blpop(["pp:test:never-filled"], timeout=2)  # Redis answers in 2 s: the deadline is shorter
        assert time.monotonic() - started < 0.6
        assert client.set("pp:test:after", "1") and client.get("pp:test:after") == "1"  # the next call is whole
        started = time.monotonic()
        assert client.blpop(["pp:test:never-filled"], timeout=1) is None  # outside: the socket timeout (5 s)
        assert time.monotonic() - started >= 0.9
        with deadline(0.001):
            time.sleep(0.01)
            with pytest.raises(redis_lib.exceptions.TimeoutError):
                client.get("pp:test:after")  # nothing left: not waited for
        assert client.get("pp:test:after") == "1"
    finally:
        client.delete("pp:test:after")
        client.close()


def test_after_a_slow_optional_call_requests_skip_redis_for_a_moment_and_background_work_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        time.sleep(_Optional.SLOW_SECONDS + 0.05)
        return "answer"

    def quick() -> str:
        calls.append("quick")
        return "answer"

    with deadline(2.0):
        assert optional("test", slow) == "answer"  # answered, slowly: kept, and Redis is skipped from now on
        assert optional("test", quick) is None
    assert calls == ["slow"]
    assert optional("test", quick) == "answer"  # outside any deadline: asked all the same
    monkeypatch.setattr(_Optional, "skip_until", time.monotonic() - 1)
    with deadline(2.0):
        assert optional("test", quick) == "answer"  # the moment has passed


def test_a_failed_optional_call_is_none_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> str:
        raise redis_lib.exceptions.ConnectionError("refused")

    _Optional.warned_at = 0.0
    with caplog.at_level("WARNING", logger=redis_client.__name__):
        assert optional("login throttle", broken) is None
        assert optional("login throttle", broken) is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "login throttle" in warnings[0] and "ConnectionError" in warnings[0]
