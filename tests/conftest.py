"""Shared fixtures: a real redis-server as production runs it (TLS only, ACL users), emptied around each test.

Also how the suite spreads over pytest-xdist's workers (`scripts/run tests` runs it on several).
"""

from pathlib import Path
from typing import Any

import pytest

from collector.redis_client import _Optional
from localcluster.redis_server import start_redis


@pytest.fixture(autouse=True)
def _redis_not_skipped() -> None:
    """Each test starts with Redis asked again: an earlier test's dead or slow Redis makes this process's
    requests skip it for a moment (collector/redis_client.py `optional`)."""
    _Optional.skip_until = 0.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("redis")
    server = start_redis(base / "server", base / "ca", collectors=["c1", "c2"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server):
    """The server's ``rediss://`` URL (no password in it: see `redis_settings`)."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_settings(redis_server):
    """CollectorConfig fields for a collector `c1` on this Redis: URL, ACL user and password, its certificate."""
    return redis_server.collector_settings("c1", redis_server.client_tls("collector", "c1"))


@pytest.fixture
def redis(redis_server):
    """An admin client (it may flush); collectors' own clients use their own user (`redis_settings`)."""
    client = redis_server.client("admin", decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


CONVERGE = Path(__file__).resolve().parent / "converge"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist, each file's tests on one worker (their module fixtures start clusters once),
    and the converge's files together on one (they share the hosts they build)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/converge" if path.startswith("tests/converge/") else path

    return ByFile(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The converge goes first, since it takes the longest: its worker starts on it at once."""
    items.sort(key=lambda item: CONVERGE not in item.path.resolve().parents)  # stable: the rest keep their order
