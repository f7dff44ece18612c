"""A collector stays ready while Redis is slow or gone: HAProxy must never be left without a server."""

import dataclasses
import socket
import time

from collector.app import create_app
from collector.config import CollectorConfig
from collector.housekeeping import Housekeeper
from collector.node import build_node


def _node(tmp_path, redis_url: str, **redis_settings):  # redis_settings: the TLS Redis's (tests/conftest.py)
    config = dataclasses.replace(CollectorConfig(), id="c1", spool_dir=str(tmp_path), installation_key="11" * 32,
                                 session_key="k", insecure_plain_http=True, redis_url=redis_url,
                                 analyst_url="http://127.0.0.1:9", **redis_settings)
    return config, build_node(config)


def test_readiness_answers_at_once_while_redis_hangs(tmp_path):
    with socket.socket() as hanging:  # accepts connections, never answers: a blackholed Redis
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        config, node = _node(tmp_path, f"redis://127.0.0.1:{hanging.getsockname()[1]}/0")
        client = create_app(config, node=node).test_client()
        started = time.monotonic()
        answer = client.get("/readyz")
        assert time.monotonic() - started < 0.2  # HAProxy's check times out at 0.5 s
        assert answer.status_code == 200
        assert answer.json["ready"] is True and answer.json["degraded"]


def test_readiness_reports_redis_as_the_heartbeat_last_saw_it(tmp_path, redis_settings):
    config, node = _node(tmp_path, **redis_settings)
    client = create_app(config, node=node).test_client()
    assert client.get("/readyz").json["degraded"]  # no heartbeat yet
    Housekeeper(node).heartbeat()  # announces membership in Redis (the analyst is unreachable)
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.json["degraded"] == []
