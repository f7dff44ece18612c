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
ASK_AGAIN_SECONDS = 2.0  # a credential the analyst did not know is asked after again at most this often
ASKS_PER_SECOND = 20  # per section and process: unknown credentials asked after at the analyst, a second
MAX_ASKED = 10_000  # answers kept until the next sync; past it, the refusals are forgotten first


@dataclass(frozen=True)
class Asked:
    """What the analyst said of a credential the synced directory does not hold: its entry or None, and
    until when (monotonic) a None stands."""

    entry: dict[str, Any] | None
    until: float


class DirectoryCache:
    """The analyst's users (badge and PIN hashes) and printers, asked live and kept in `cache_path` for offline use."""

    def __init__(self, analyst: AnalystClient, cache_path: Path, badge_pepper: str) -> None:
        self.analyst = analyst
        self.cache_path = cache_path
        self._pepper = badge_pepper.encode()
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._asked: dict[tuple[str, str], Asked] = {}  # (section, digest) asked at the analyst since the last sync
        self._asks: dict[str, tuple[int, int]] = {}  # per section: (this second, the asks made in it)
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

        A credential the synced directory does not hold is asked after at the analyst (issued since the
        last sync: the host is not refused for a sync period). Raises Unavailable (the backend retries)
        when it cannot be checked now: no directory synced yet, or, for one the directory lacks, the
        analyst away or too many such asks in this second.
        """
        entry = self._credential("submitters", authorization, ask=True)
        return str(entry["host"]) if entry is not None else None

    def terminal(self, authorization: str | None, *, ask: bool = False) -> dict[str, str] | None:
        """The enrolled terminal (``{"id", "printer"}``) whose credential the ``Authorization: Bearer``
        header carries, or None: unknown, or revoked (gone from the directory at the next sync).

        With `ask`, a credential the directory does not hold is asked after at the analyst (enrolled
        since the last sync: a station works at once; the caller throttles who may ask). Raises
        Unavailable as `submitter` does.
        """
        entry = self._credential("terminals", authorization, ask=ask)
        return {"id": str(entry["id"]), "printer": str(entry["printer"])} if entry is not None else None

    def _credential(self, section: str, authorization: str | None, *, ask: bool) -> dict[str, Any] | None:
        """The entry of `section` whose token digest matches the bearer token in `authorization`.

        Checked against the synced digests (the persisted cache while the analyst is away), every one
        compared in constant time; then against what the analyst said since the last sync. With `ask`,
        a digest neither holds is asked after at the analyst: at most ASKS_PER_SECOND of them a second
        per section in this process, and one it did not know again only after ASK_AGAIN_SECONDS.
        """
        if not authorization or not authorization.startswith("Bearer ") or len(authorization) > 512:
            return None
        digest = token_digest(authorization[7:].strip())
        synced, entry = self._entry_of(section, digest)  # a newer sync also forgets what was asked before it
        if entry is not None:
            return entry
        now = time.monotonic()
        with self._lock:
            asked = self._asked.get((section, digest))
            if asked is not None and (asked.entry is not None or now < asked.until):
                return asked.entry
            if ask:
                self._take_ask(section, now)
        not_synced = Unavailable("directory-not-synced", f"this collector has not yet received the {section}' "
                                 "credentials from the analyst; try again later")
        if not ask:
            if not synced:
                raise not_synced
            return None
        try:
            found = self.analyst.credential(section, digest)
        except AnalystUnavailable:
            if not synced:
                raise not_synced from None
            raise Unavailable("analyst-unreachable", "this credential is not in this collector's directory and the "
                              "central service cannot be asked now; try again in a moment") from None
        with self._lock:
            if len(self._asked) >= MAX_ASKED:
                self._asked = {key: kept for key, kept in self._asked.items() if kept.entry is not None}
            self._asked[(section, digest)] = Asked(found, now + ASK_AGAIN_SECONDS)
        return found

    def _take_ask(self, section: str, now: float) -> None:
        """Count one ask of the analyst against this second's budget (the lock held); Unavailable when spent."""
        second, used = self._asks.get(section, (0, 0))
        if int(now) != second:
            second, used = int(now), 0
        if used >= ASKS_PER_SECOND:
            raise Unavailable("credential-check-busy", "too many unknown credentials are being checked at this "
                              "moment; try again in a moment")
        self._asks[section] = (second, used + 1)

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
