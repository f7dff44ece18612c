"""Jinja filters of pullprint's roles (ansible.cfg: filter_plugins)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any


def redis_collector_password(key: str, collector_id: str) -> str:
    """Collector `collector_id`'s own Redis password, derived from the vault's ``pullprint_redis_collector_key``.

    HMAC-SHA256 of the collector's id: the key never leaves the control node, each collector gets
    only its own password (one cannot compute another's), and the Redis host gets only hashes.
    """
    if len(key) < 16:
        raise ValueError("pullprint_redis_collector_key is empty or short: put it in the vault")
    return hmac.new(key.encode(), f"redis-user:collector-{collector_id}".encode(), hashlib.sha256).hexdigest()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"pullprint_redis_collector_password": redis_collector_password}
