"""DirectoryCache: the analyst's users, printers and credentials, cached on disk for use while it is away."""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.analyst_client import AnalystClient, AnalystUnavailable
from pullprint.credentials import badge_hash, token_digest, verify_pin
from pullprint.errors import Forbidden, NotFound, Unauthorized, Unavailable

BAD_CREDENTIALS = ("bad-credentials", "badge or PIN not recognised")


@dataclass(frozen=True)
class Login:
    """Who logged in: the user, whether only the synced directory said so, for a guest's release
    code the one job it releases, and the user's open jobs with their total when the analyst listed them."""

    user: str
    offline: bool = False
    job: str = ""
    jobs: tuple[list[dict[str, Any]], int] | None = None
USER_DENIED = ("user-denied", "your account may not print at the moment; your jobs stay held. Ask IT")
MASKED = "***"  # how the analyst's printer answers (all but the sync) show an SNMPv3 key that is set
SNMP_SECRETS = ("snmp_v3_auth_key", "snmp_v3_priv_key")
SUBMITTER_RESYNC_SECONDS = 2.0  # an unknown submit token makes an early sync at most this often


class DirectoryCache:
    """The analyst's users (badge and PIN hashes) and printers, asked live and kept in `cache_path` for offline use."""

    def __init__(self, analyst: AnalystClient, cache_path: Path, badge_pepper: str) -> None:
        self.analyst = analyst
        self.cache_path = cache_path
        self._pepper = badge_pepper.encode()
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._resynced_at: dict[str, float] = {}  # early syncs for an unknown credential, per section
        self._asked: dict[str, dict[str, str]] = {}  # terminals found at the analyst since the last sync
        self._mtime_ns = 0
        self._stat_at = 0.0

    # -- the offline cache -------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Fetch users and printers from the analyst into the cache file; False when it is away."""
        try:
            data = self.analyst.sync()
        except AnalystUnavailable:
            return False
        data["synced_at"] = time.time()
        # Workers sync early too (an unknown credential): each writes its own file, then renames it.
        tmp = self.cache_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secret hashes
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.cache_path)
        with self._lock:
            self._cache, self._loaded_at, self._asked = data, time.time(), {}
            with contextlib.suppress(OSError):
                self._mtime_ns = self.cache_path.stat().st_mtime_ns
        return True

    def _cached(self) -> dict[str, Any]:
        """The cache as the newest sync wrote it: the file is read again whenever it changed (looked at
        twice a second), so a revoked credential is gone from every worker as soon as a sync removed it."""
        with self._lock:
            now = time.monotonic()
            if not self._cache or now - self._stat_at > 0.5:
                self._stat_at = now
                try:
                    mtime = self.cache_path.stat().st_mtime_ns
                    if not self._cache or mtime != self._mtime_ns:
                        self._cache = json.loads(self.cache_path.read_text())
                        self._mtime_ns, self._loaded_at = mtime, time.time()
                        self._asked = {}
                except (OSError, json.JSONDecodeError):
                    pass
            return self._cache

    def synced_at(self) -> float | None:
        return self._cached().get("synced_at")

    # -- lookups -----------------------------------------------------------------------------------
    def authenticate(self, credentials: dict[str, str], *, printer: str, collector: str, terminal: str = "",
                     source: str = "", jobs_limit: int | None = None) -> Login:
        """Who the badge, user + PIN or release code name, with their open jobs (at most `jobs_limit`,
        0: all; None: not asked) when the analyst answered. Raises Unauthorized alike for all misses.

        The analyst throttles too, by the `terminal` and `source` address reported here and by user;
        its 429/423 (and a 403 for a terminal revoked since the last sync) come back as they are.
        Offline, badges and PINs are checked against the synced directory; a guest's release code
        only the analyst knows (503 until it is back).
        """
        try:
            user, job, jobs = self.analyst.auth(credentials, printer=printer, collector=collector,
                                                terminal=terminal, source=source, jobs_limit=jobs_limit)
            return Login(user, job=job, jobs=jobs)
        except AnalystUnavailable:
            if "code" in credentials:
                raise Unavailable("analyst-unreachable", "a release code can be checked only while the central "
                                  "service is reachable; try again in a moment") from None
            return Login(self._authenticate_offline(credentials), offline=True)

    def denied(self, user: str) -> bool:
        """Whether the last synced directory says `user` is denied (held jobs stay, nothing new is taken)."""
        return any(u.get("name") == user and u.get("allowed", True) is False
                   for u in self._cached().get("users", []))

    def _authenticate_offline(self, credentials: dict[str, str]) -> str:
        users = self._cached().get("users", [])
        if "badge" in credentials:
            wanted = badge_hash(self._pepper, credentials["badge"])
            for user in users:
                if user.get("badge_hash") == wanted:
                    if user.get("allowed", True) is False:
                        raise Forbidden(*USER_DENIED)
                    return str(user["name"])
            # A miss costs an scrypt here (the analyst's costs a lookup): offline, where each process
            # limits on its own, every badge guess also costs the guesser the time of a PIN check.
            verify_pin("0000", None)
            raise Unauthorized(*BAD_CREDENTIALS)
        record: dict[str, Any] = next((u for u in users if u.get("name") == credentials.get("user")), {})
        if verify_pin(credentials.get("pin", ""), record.get("pin_hash")):
            if record.get("allowed", True) is False:
                raise Forbidden(*USER_DENIED)
            return credentials["user"]
        raise Unauthorized(*BAD_CREDENTIALS)

    def submitter(self, authorization: str | None) -> str | None:
        """The host whose credential the ``Authorization: Bearer`` header carries, or None (unknown, revoked).

        Raises Unavailable when no directory was ever synced (the backend retries).
        """
        entry = self._bearer("submitters", authorization)
        return str(entry["host"]) if entry is not None else None

    def terminal(self, authorization: str | None, *, ask: bool = False) -> dict[str, str] | None:
        """The enrolled terminal (``{"id", "printer"}``) whose credential the ``Authorization: Bearer``
        header carries, or None: unknown, or revoked (gone from the directory at the next sync).

        With `ask`, a credential the directory does not hold is asked after at the analyst (enrolled
        since the last sync: a station works at once; the caller throttles who may ask), and what it
        says is remembered until the next sync. Raises Unavailable when no directory with terminals
        was ever synced.
        """
        if not authorization or not authorization.startswith("Bearer ") or len(authorization) > 512:
            return None
        entry = self._bearer("terminals", authorization, None)
        if entry is not None:
            return {"id": str(entry["id"]), "printer": str(entry["printer"])}
        digest = token_digest(authorization[7:].strip())
        self._cached()  # a newer sync forgets what was asked before it
        with self._lock:
            if digest in self._asked:
                return self._asked[digest]
        if not ask:
            return None
        try:
            found = self.analyst.terminal(digest)
        except AnalystUnavailable:
            return None
        if found is not None:
            with self._lock:
                self._asked[digest] = {"id": str(found["id"]), "printer": str(found["printer"])}
        return found

    def _bearer(self, section: str, authorization: str | None,
                resync_every: float | None = SUBMITTER_RESYNC_SECONDS) -> dict[str, Any] | None:
        """The entry of `section` whose token digest matches the bearer token in `authorization`.

        Checked against the synced digests (the persisted cache while the analyst is away), every one
        compared in constant time. An unknown token makes one early sync (at most every `resync_every`
        seconds per section; None: never), so a credential issued a moment ago is not refused for a
        whole sync period.
        """
        if not authorization or not authorization.startswith("Bearer ") or len(authorization) > 512:
            return None
        digest = token_digest(authorization[7:].strip())
        synced, entry = self._entry_of(section, digest)
        last = self._resynced_at.get(section, 0.0)
        if entry is None and resync_every is not None and time.monotonic() - last > resync_every:
            self._resynced_at[section] = time.monotonic()
            if self.refresh():
                synced, entry = self._entry_of(section, digest)
        if not synced:
            raise Unavailable("directory-not-synced", f"this collector has not yet received the {section}' "
                              "credentials from the analyst; try again later")
        return entry

    def _entry_of(self, section: str, digest: str) -> tuple[bool, dict[str, Any] | None]:
        cached = self._cached()
        found = None
        for entry in cached.get(section, ()):
            if hmac.compare_digest(str(entry.get("token_hash", "")), digest) and found is None:
                found = entry
        return section in cached, found

    def printer(self, printer_id: str) -> dict[str, Any]:
        try:
            return self.analyst.printer(printer_id)
        except AnalystUnavailable:
            for printer in self._cached().get("printers", []):
                if printer.get("id") == printer_id:
                    return dict(printer)
            raise NotFound("unknown-printer", f"no printer {printer_id!r} is known") from None

    def require_printer(self, printer_id: str) -> None:
        """NotFound for a printer neither the synced directory nor the analyst knows. One the sync
        brought needs no call (a login's check: its release fetches the printer fresh); one added
        since the last sync is asked for."""
        if not any(printer.get("id") == printer_id for printer in self.printers()):
            self.printer(printer_id)

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
