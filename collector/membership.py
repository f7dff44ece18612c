"""Who is alive and where: liveness from a short-lived Redis key per collector (MACed), addresses only from the analyst.

Redis may say who is alive (a record a collector sealed, `collector/state_mac.py`), never where a
collector is or who it is: a peer's URL and site come from the analyst's list of collectors, which
every heartbeat brings back over mutual TLS (kept in `members_file`), and every call to a peer
checks that its certificate names that collector (collector/peers.py). A collector the analyst
has not listed is no peer, whatever Redis says.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.redis_client import optional
from collector.state_mac import StateMac
from pullprint import keys


@dataclass(frozen=True)
class Member:
    """A live collector: its id, where peers reach it (from the analyst), and its site."""

    id: str
    url: str
    site: str = ""

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Member:
        return cls(str(record["id"]), str(record.get("url", "")), str(record.get("site") or ""))


def announce(redis: Any, seals: StateMac, collector_id: str, site: str, ttl_seconds: float) -> None:
    """This collector is alive for `ttl_seconds` (no address: peers take that from the analyst)."""
    key = keys.collector_member(collector_id)
    record = json.dumps({"id": collector_id, "site": site, "at": time.time()})
    redis.set(key, seals.seal(key, record, ttl_seconds=ttl_seconds), px=int(ttl_seconds * 1000))


def withdraw(redis: Any, collector_id: str) -> None:
    redis.delete(keys.collector_member(collector_id))


def live_ids(redis: Any, seals: StateMac) -> set[str]:
    """Every collector whose sealed membership record has not expired (a planted record is ignored)."""
    names = list(redis.scan_iter(match=keys.MEMBERS_PATTERN, count=500))
    alive: set[str] = set()
    if not names:
        return alive
    for name, raw in zip(names, redis.mget(names), strict=True):
        name = name.decode() if isinstance(name, bytes) else str(name)
        text = seals.open(name, raw)
        if text is None:
            continue
        try:
            collector_id = str(json.loads(text)["id"])
        except (ValueError, KeyError, TypeError):
            continue
        if keys.collector_member(collector_id) == name:
            alive.add(collector_id)
    return alive


class Membership:
    """One collector's view of the live collectors: alive by Redis (or, Redis away, by the analyst's
    last answer), addressed by the analyst's last answer (kept in `members_file`, shared by its processes)."""

    def __init__(self, redis: Any, collector_id: str, members_file: Path, ttl_seconds: float,
                 seals: StateMac) -> None:
        self.redis = redis
        self.id = collector_id
        self.members_file = members_file
        self.ttl_seconds = ttl_seconds
        self.seals = seals
        self._seen: tuple[float, dict[str, Member]] = (float("-inf"), {})

    # How long one answer of `live` serves the process: every submit, login and release asks, and
    # asking costs a Redis scan and a read of the members file. Small beside the membership's own
    # lag (a dead collector stays listed for up to `ttl_seconds`).
    SEEN_FOR_SECONDS = 0.25

    def announce(self, site: str) -> None:
        announce(self.redis, self.seals, self.id, site, self.ttl_seconds)
        self.forget_seen()

    def forget_seen(self) -> None:
        """Ask Redis and the members file again at the next `live` (this node's own view changed)."""
        self._seen = (float("-inf"), {})

    def live(self) -> dict[str, Member]:
        """Every live collector the analyst knows, this one included if it is announced, by id."""
        at, members = self._seen
        if time.monotonic() - at < self.SEEN_FOR_SECONDS:
            return dict(members)
        members = self._live()
        self._seen = (time.monotonic(), members)
        return dict(members)

    def _live(self) -> dict[str, Member]:
        known, fresh = self._from_analyst()
        alive = optional("membership", lambda: live_ids(self.redis, self.seals))
        if alive is None:  # Redis away or slow: fall back to what the last heartbeat heard
            if not fresh:
                return {}  # too old to trust: better no peer than a dead one
            alive = {c for c, alive_there in known.items() if alive_there[1]}
        return {c: known[c][0] for c in sorted(alive) if c in known and known[c][0].url}

    def peers(self) -> dict[str, Member]:
        """Live collectors other than this one, by id."""
        members = self.live()
        members.pop(self.id, None)
        return members

    def _from_analyst(self) -> tuple[dict[str, tuple[Member, bool]], bool]:
        """The analyst's last list: each collector with whether it was alive then; and whether the list is fresh."""
        try:
            data = json.loads(self.members_file.read_text())
        except (OSError, ValueError):
            return {}, False
        fresh = time.time() - float(data.get("at", 0)) <= 3 * self.ttl_seconds
        known = {}
        for record in data.get("collectors", []):
            try:
                member = Member.from_json(record)
            except (KeyError, TypeError):
                continue
            known[member.id] = (member, bool(record.get("alive")))
        return known, fresh

    def remember(self, collectors: Iterable[Mapping[str, Any]]) -> None:
        """Keep the analyst's list of collectors (from a heartbeat): every peer's address, and who was alive."""
        tmp = self.members_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"at": time.time(), "collectors": list(collectors)}))
        os.replace(tmp, self.members_file)
        self.forget_seen()
