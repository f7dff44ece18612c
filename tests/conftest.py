"""Shared fixtures: a real redis-server (an empty database around each test)."""

import pytest
import redis as redis_lib

from localcluster.redis_server import start_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    daemon, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    daemon.stop()


@pytest.fixture
def redis(redis_url):
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
