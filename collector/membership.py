"""Who is alive: a short-lived Redis key per collector (expired: dead), and the analyst's list when Redis is away."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pullprint import keys


@dataclass(frozen=True)
class Member:
    """A live collector: its id, where peers reach it, and its site."""

    id: str
    url: str
    site: str = ""

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Member:
        return cls(str(record["id"]), str(record.get("url", "")), str(record.get("site") or ""))


def announce(redis: Any, collector_id: str, url: str, site: str, ttl_seconds: float) -> None:
    record = {"id": collector_id, "url": url, "site": site, "at": time.time()}
    redis.set(keys.collector_member(collector_id), json.dumps(record), px=int(ttl_seconds * 1000))


def withdraw(redis: Any, collector_id: str) -> None:
    redis.delete(keys.collector_member(collector_id))


def live_members(redis: Any) -> dict[str, Member]:
    """Every collector whose membership key has not expired, by id."""
    names = list(redis.scan_iter(match=keys.MEMBERS_PATTERN, count=500))
    members: dict[str, Member] = {}
    if not names:
        return members
    for raw in redis.mget(names):
        if raw:
            member = Member.from_json(json.loads(raw))
            members[member.id] = member
    return members


class Membership:
    """One collector's view of the live collectors: Redis first; when Redis is away, the list the
    analyst answered to this node's last heartbeat (kept in `members_file`, shared by its processes)."""

    def __init__(self, redis: Any, collector_id: str, members_file: Path, ttl_seconds: float) -> None:
        self.redis = redis
        self.id = collector_id
        self.members_file = members_file
        self.ttl_seconds = ttl_seconds

    def live(self) -> dict[str, Member]:
        """Every live collector, this one included if it is announced, by id."""
        try:
            return live_members(self.redis)
        except Exception:  # noqa: BLE001 - Redis trouble: fall back to what the last heartbeat heard
            return self._from_analyst()

    def peers(self) -> dict[str, Member]:
        """Live collectors other than this one, by id."""
        members = self.live()
        members.pop(self.id, None)
        return members

    def _from_analyst(self) -> dict[str, Member]:
        try:
            data = json.loads(self.members_file.read_text())
        except (OSError, ValueError):
            return {}
        if time.time() - float(data.get("at", 0)) > 3 * self.ttl_seconds:
            return {}  # too old to trust: better no peer than a dead one
        return {c["id"]: Member.from_json(c) for c in data.get("collectors", []) if c.get("alive")}

    def remember(self, collectors: Iterable[Mapping[str, Any]]) -> None:
        """Keep the analyst's list of collectors (from a heartbeat) for when Redis is away."""
        tmp = self.members_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.time(), "collectors": list(collectors)}))
        os.replace(tmp, self.members_file)
