"""Badge and PIN hashing, and bearer-secret checks (nodes know each other by certificate: pullprint/pki.py).

Badge numbers are short and guessable, so they are stored as HMAC-SHA256 under a secret pepper
(deterministic, so a badge can be looked up by its hash, and worthless without the pepper). PINs
are stored with scrypt and a per-user salt. `verify_pin` costs the same for an unknown user as
for a known one, so timing does not tell the two apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_DUMMY_PIN_HASH = None


def badge_hash(pepper: bytes, badge: str) -> str:
    """The stored, looked-up form of a badge number (hex HMAC-SHA256)."""
    return hmac.new(pepper, badge.strip().encode(), hashlib.sha256).hexdigest()


def release_code_hash(pepper: bytes, code: str) -> str:
    """The stored, looked-up form of a guest job's release code (HMAC-SHA256, apart from badges'),
    digits only: spaces and dashes as the code was printed in the mail do not count."""
    digits = "".join(c for c in code if c.isdigit())
    return hmac.new(pepper, b"release-code:" + digits.encode(), hashlib.sha256).hexdigest()


def new_release_code() -> str:
    """A fresh guest release code: 10 random digits (as throttled as PINs; the analyst stores its HMAC)."""
    return f"{secrets.randbelow(10**10):010d}"


def pin_hash(pin: str, *, salt: bytes | None = None) -> str:
    """The stored form of a PIN: ``scrypt$<salt b64>$<hash b64>``."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_pin(pin: str, stored: str | None) -> bool:
    """True when `pin` matches `stored`; spends the same time when `stored` is None (unknown user)."""
    global _DUMMY_PIN_HASH
    if stored is None:
        if _DUMMY_PIN_HASH is None:
            _DUMMY_PIN_HASH = pin_hash(secrets.token_hex(8))
        stored, known = _DUMMY_PIN_HASH, False
    else:
        known = True
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(candidate, digest) and known


def new_secret(nbytes: int = 32) -> str:
    """A fresh random secret, URL-safe text (cluster tokens, session tokens, peppers)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """A digest of a bearer token, used as its storage key so the token itself is never stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_matches(header_value: str | None, secret: str) -> bool:
    """True when an Authorization header is ``Bearer <secret>`` (constant-time compare)."""
    if not header_value or not header_value.startswith("Bearer ") or not secret:
        return False
    return hmac.compare_digest(header_value[7:].encode(), secret.encode())
