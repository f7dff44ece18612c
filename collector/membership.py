"""Who is alive: each collector refreshes a short-lived Redis key; an expired key means a dead node."""

from __future__ import annotations

import json
import time
from typing import Any

from pullprint import keys


def announce(redis: Any, collector_id: str, url: str, site: str, ttl_seconds: float) -> None:
    record = {"id": collector_id, "url": url, "site": site, "at": time.time()}
    redis.set(keys.collector_member(collector_id), json.dumps(record), px=int(ttl_seconds * 1000))


def withdraw(redis: Any, collector_id: str) -> None:
    redis.delete(keys.collector_member(collector_id))


def live_members(redis: Any) -> dict[str, dict[str, Any]]:
    """Every collector whose membership key has not expired, by id."""
    names = list(redis.scan_iter(match=keys.MEMBERS_PATTERN, count=500))
    members: dict[str, dict[str, Any]] = {}
    if not names:
        return members
    for raw in redis.mget(names):
        if raw:
            record = json.loads(raw)
            members[record["id"]] = record
    return members
