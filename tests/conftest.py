"""Shared fixtures: a real redis-server as production runs it (TLS only, ACL users), emptied around each test."""

import pytest

from localcluster.redis_server import start_redis


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
