"""MACs on the Redis values that carry authority, so that a value nobody but a collector wrote is never acted on.

Whoever can write to Redis (a stolen password, a bug, a restore from elsewhere) must not be able to
decide what a collector does: which job a CUPS job-uuid became (`keys.submitted`), a release's
stored answer (`keys.idempotent_release`), that the analyst is down (`keys.analyst_down`), who
holds a job's site claim and that a job is gone (`keys.offline_claim`, `keys.job_gone`), that the
site's claims are restored (`keys.site_claims_ready`), who is a live member
(`keys.collector_member`) and what a printer's health is (`keys.printer_health`). Each such value
is stored as ``pp1.<expires>.<mac>.<value>``: an HMAC-SHA256 under a key derived from the
installation key (which only collectors hold) over the Redis key name, the expiry and the value, so a
value cannot be forged, moved to another key, or replayed after it expired. A value that does not
verify is treated as absent and logged once.

What a MAC cannot stop: a Redis writer can still delete values and hold locks (SET NX with
fencing: the printer locks, the poll owners, a site claim it takes by planting any value there),
i.e. deny service; ACL users and TLS keep everyone else on the LAN from writing at all.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

_INFO = b"pullprint redis state mac v1"
_VERSION = "pp1"
_MAC_HEX = 32  # 128 bits
_LOGGED_MAX = 1024


def unverified(stored: str) -> str:
    """The value part of a sealed text, unchecked: for tests and operators' tools only, never for a decision."""
    if not stored.startswith(_VERSION + "."):
        return stored
    return stored.split(".", 3)[-1]


class StateMac:
    """Seals and opens the authority-carrying values a collector keeps in Redis."""

    def __init__(self, installation_key: bytes) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(installation_key)
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def _mac(self, key: str, expires: int, value: str) -> str:
        message = f"{_VERSION}\0{key}\0{expires}\0{value}".encode()
        return hmac.new(self._key, message, sha256).hexdigest()[:_MAC_HEX]

    def seal(self, key: str, value: str, *, ttl_seconds: float | None = None) -> str:
        """The text to store under Redis key `key` for `value`; it stops verifying after `ttl_seconds`."""
        expires = int(time.time() + ttl_seconds) + 1 if ttl_seconds else 0
        return f"{_VERSION}.{expires}.{self._mac(key, expires, value)}.{value}"

    def open(self, key: str, stored: str | bytes | None) -> str | None:
        """The value sealed under `key`, or None when there is none, it is forged, moved or expired."""
        if stored is None:
            return None
        text = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else str(stored)
        version, _, rest = text.partition(".")
        expires_text, _, rest = rest.partition(".")
        mac, _, value = rest.partition(".")
        try:
            expires = int(expires_text)
        except ValueError:
            expires = -1
        if version != _VERSION or expires < 0 or not hmac.compare_digest(mac, self._mac(key, expires, value)):
            self._planted(key)
            return None
        if expires and expires < time.time():
            return None  # a genuine value, replayed or kept past its time
        return value

    def valid(self, key: str, stored: str | bytes | None) -> bool:
        return self.open(key, stored) is not None

    def _planted(self, key: str) -> None:
        with self._lock:
            if key in self._logged:
                return
            if len(self._logged) >= _LOGGED_MAX:
                self._logged.clear()
            self._logged.add(key)
        log.warning("ignoring a value in redis that no collector wrote (bad MAC): %s", key)
