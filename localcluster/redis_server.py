"""A private redis-server on loopback for the local cluster and the tests: TLS only, ACL users, no default user.

What a client must bring (docs/security.md): a certificate from the cluster CA (``tls-auth-clients
yes``: no certificate, no handshake), then an ACL user and its password (the ``default`` user is
off, so an unauthenticated command is refused with NOAUTH). Plain TCP is not served at all
(``port 0``). Users, one per role:

- ``collector``: keys ``pp:*`` only (pullprint.keys), no pub/sub channels, the commands collectors
  send (strings, lists, hashes, expiry, SCAN, scripts for the printer locks, pipelines) and none
  of the dangerous ones (FLUSHALL, KEYS, CONFIG, ACL, DEBUG, SHUTDOWN, MONITOR, CLIENT KILL, …).
- ``admin``: everything; for operators and the test suite (flushdb between tests), never a node.

Passwords come from files (0600) and reach redis-server only as SHA-256 hashes in its config file;
they are never in argv, in a URL or in a log. Redis 7.0 has no CRL check of its own: a revoked
collector certificate still completes the handshake, so revoking a collector also means rotating
the collector password (docs/security.md).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pullprint.daemons import Daemon, free_port, port_open, require, start
from pullprint.pki import Authority
from pullprint.tls import TlsFiles

USERS = ("collector", "admin")
# ACL rules per user, after `on` and the password. Applied left to right: nothing, then the
# categories collectors use, then the dangerous ones taken away again.
RULES = {
    "collector": ("resetkeys ~pp:* resetchannels -@all +@connection +@read +@write +@keyspace +@string +@list "
                  "+@hash +@set +@sortedset +@transaction +@scripting -@dangerous -@admin -@pubsub "
                  "-script|flush -script|kill"),
    "admin": "~* &* +@all",
}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def password_files(secrets_dir: Path) -> dict[str, Path]:
    """Each Redis user's password file (``redis_<user>_password``, 0600), made once with a fresh password."""
    files = {}
    for user in USERS:
        path = secrets_dir / f"redis_{user}_password"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(32))
        files[user] = path
    return files


@dataclass
class RedisServer:
    """A running redis-server and what its clients need: the URL (no password in it), the CA, the users' passwords."""

    daemon: Daemon
    url: str
    ca_file: Path
    authority: Path
    password_files: dict[str, Path]
    _client_tls: dict[tuple[str, str], TlsFiles] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def password(self, user: str) -> str:
        return self.password_files[user].read_text().strip()

    def client_tls(self, role: str = "admin", name: str = "redis-admin") -> TlsFiles:
        """A client certificate from the cluster CA (issued once), for tests and operators."""
        if (role, name) not in self._client_tls:
            authority = Authority(self.authority)
            cert, key = authority.issue(role, name, ["127.0.0.1"])
            self._client_tls[(role, name)] = TlsFiles(str(authority.cert_file), str(cert), str(key))
        return self._client_tls[(role, name)]

    def client(self, user: str = "admin", tls: TlsFiles | None = None, **options: Any) -> Any:
        """A redis-py client as `user`, over TLS with `tls` (default: an admin certificate)."""
        from collector.redis_client import connect

        return connect(self.url, username=user, password=self.password(user), tls=tls or self.client_tls(),
                       **options)

    def collector_settings(self, tls: TlsFiles) -> dict[str, str]:
        """The collector config fields that point a collector with certificate `tls` at this Redis."""
        return {"redis_url": self.url, "redis_username": "collector", "redis_password": self.password("collector"),
                "ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()


def _config(state_dir: Path, port: int, cert: Path, key: Path, ca: Path, passwords: Mapping[str, Path]) -> str:
    lines = [
        "bind 127.0.0.1", "port 0", f"tls-port {port}", "protected-mode yes",
        f"tls-cert-file {cert}", f"tls-key-file {key}", f"tls-ca-cert-file {ca}",
        "tls-auth-clients yes", 'tls-protocols "TLSv1.2 TLSv1.3"', "tls-prefer-server-ciphers yes",
        'save ""', "appendonly no", f"dir {state_dir}",
        "user default off resetkeys resetchannels -@all nopass",
    ]
    for user in USERS:
        digest = hashlib.sha256(passwords[user].read_text().strip().encode()).hexdigest()
        lines.append(f"user {user} reset on #{digest} {RULES[user]}")
    return "\n".join(lines) + "\n"


def start_redis(state_dir: Path, authority: Path, port: int | None = None, *,
                secrets_dir: Path | None = None) -> RedisServer:
    """A private redis-server on loopback, TLS only, ACL users (no persistence: Redis holds only rebuildable state).

    `authority`: the cluster CA folder (made if missing), which issues the server certificate
    (role ``redis``) and which every client certificate must come from. Passwords are read from
    (or made in) `secrets_dir`, by default ``<state_dir>/secrets``.
    """
    paths = require("redis-server")
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = Authority(authority)
    ca.init()
    cert, key = ca.issue("redis", "redis", ["127.0.0.1"], out_dir=state_dir / "tls")
    passwords = password_files(secrets_dir or state_dir / "secrets")
    config_path = state_dir / "redis.conf"
    _write_private(config_path, _config(state_dir, port, cert, key, ca.cert_file, passwords))
    daemon = start("redis", [paths["redis-server"], str(config_path)], log_path=state_dir / "redis.log",
                   ready=lambda: port_open("127.0.0.1", port))
    return RedisServer(daemon, f"rediss://127.0.0.1:{port}/0", ca.cert_file, authority, passwords)
