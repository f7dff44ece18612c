"""DirectoryCache: users and printers from the analyst, cached on disk for logins while the analyst is away."""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from collector.analyst_client import AnalystClient, AnalystUnavailable
from pullprint.credentials import badge_hash, token_digest, verify_pin
from pullprint.errors import NotFound, Unauthorized, Unavailable

BAD_CREDENTIALS = ("bad-credentials", "badge or PIN not recognised")
MASKED = "***"  # how the analyst's printer answers (all but the sync) show an SNMPv3 key that is set
SNMP_SECRETS = ("snmp_v3_auth_key", "snmp_v3_priv_key")
SUBMITTER_RESYNC_SECONDS = 10.0  # an unknown submit token makes an early sync at most this often


class DirectoryCache:
    """The analyst's users (badge and PIN hashes) and printers, asked live and kept in `cache_path` for offline use."""

    def __init__(self, analyst: AnalystClient, cache_path: Path, badge_pepper: str) -> None:
        self.analyst = analyst
        self.cache_path = cache_path
        self._pepper = badge_pepper.encode()
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._submitters_resynced_at = 0.0

    # -- the offline cache -------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Fetch users and printers from the analyst into the cache file; False when it is away."""
        try:
            data = self.analyst.sync()
        except AnalystUnavailable:
            return False
        data["synced_at"] = time.time()
        tmp = self.cache_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secret hashes
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.cache_path)
        with self._lock:
            self._cache, self._loaded_at = data, time.time()
        return True

    def _cached(self) -> dict[str, Any]:
        with self._lock:
            if not self._cache or time.time() - self._loaded_at > 5:
                try:
                    self._cache = json.loads(self.cache_path.read_text())
                    self._loaded_at = time.time()
                except (OSError, json.JSONDecodeError):
                    pass
            return self._cache

    def synced_at(self) -> float | None:
        return self._cached().get("synced_at")

    # -- lookups -----------------------------------------------------------------------------------
    def authenticate(self, credentials: dict[str, str], *, printer: str, collector: str) -> tuple[str, bool]:
        """The user name for a badge or user+PIN; (name, offline). Raises Unauthorized alike for all misses."""
        try:
            return self.analyst.auth(credentials, printer=printer, collector=collector), False
        except AnalystUnavailable:
            return self._authenticate_offline(credentials), True

    def _authenticate_offline(self, credentials: dict[str, str]) -> str:
        users = self._cached().get("users", [])
        if "badge" in credentials:
            wanted = badge_hash(self._pepper, credentials["badge"])
            for user in users:
                if user.get("badge_hash") == wanted:
                    return str(user["name"])
            verify_pin("0000", None)  # spend the time a PIN check costs, like the analyst does
            raise Unauthorized(*BAD_CREDENTIALS)
        stored = next((u.get("pin_hash") for u in users if u.get("name") == credentials.get("user")), None)
        if verify_pin(credentials.get("pin", ""), stored):
            return credentials["user"]
        raise Unauthorized(*BAD_CREDENTIALS)

    def submitter(self, authorization: str | None) -> str | None:
        """The host whose credential the ``Authorization: Bearer`` header carries, or None (unknown, revoked).

        Checked against the synced digests (the persisted cache while the analyst is away), every one
        compared in constant time. An unknown token makes one early sync (at most every
        `SUBMITTER_RESYNC_SECONDS`), so a host issued a credential a moment ago is not refused for a
        whole sync period. Raises Unavailable when no directory was ever synced (the backend retries).
        """
        if not authorization or not authorization.startswith("Bearer ") or len(authorization) > 512:
            return None
        digest = token_digest(authorization[7:].strip())
        synced, host = self._submitter_of(digest)
        if host is None and time.monotonic() - self._submitters_resynced_at > SUBMITTER_RESYNC_SECONDS:
            self._submitters_resynced_at = time.monotonic()
            if self.refresh():
                synced, host = self._submitter_of(digest)
        if not synced:
            raise Unavailable("directory-not-synced", "this collector has not yet received the submitting "
                              "hosts' credentials from the analyst; try again later")
        return host

    def _submitter_of(self, digest: str) -> tuple[bool, str | None]:
        cached = self._cached()
        found = None
        for entry in cached.get("submitters", ()):
            if hmac.compare_digest(str(entry.get("token_hash", "")), digest) and found is None:
                found = str(entry["host"])
        return "submitters" in cached, found

    def printer(self, printer_id: str) -> dict[str, Any]:
        try:
            return self.analyst.printer(printer_id)
        except AnalystUnavailable:
            for printer in self._cached().get("printers", []):
                if printer.get("id") == printer_id:
                    return dict(printer)
            raise NotFound("unknown-printer", f"no printer {printer_id!r} is known") from None

    def printers(self) -> list[dict[str, Any]]:
        return list(self._cached().get("printers", []))

    def with_snmp_keys(self, printer: dict[str, Any]) -> dict[str, Any]:
        """`printer` with the SNMPv3 keys it has masked filled in from the synced directory, to ask it now.

        Only the sync hands collectors the keys in clear (their pollers need them); the record the
        release fetches fresh for its service state is the console's, masked. A key the sync has not
        brought yet stays empty: that printer then reads as unreachable and its policy decides.
        """
        masked = [name for name in SNMP_SECRETS if printer.get(name) == MASKED]
        if not masked:
            return printer
        synced = next((p for p in self.printers() if p.get("id") == printer.get("id")), {})
        return {**printer, **{name: str(synced.get(name) or "") for name in masked}}
