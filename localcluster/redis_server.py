"""A private redis-server on loopback for the local cluster and the tests: TLS only, ACL users, no default user.

What a client must bring (docs/security.md): a certificate from the cluster CA (``tls-auth-clients
yes``: no certificate, no handshake), then an ACL user and its password (the ``default`` user is
off, so an unauthenticated command is refused with NOAUTH). Plain TCP is not served at all
(``port 0``). Users, by role (`RULES`):

- ``collector-<id>``, one per collector (`collector.redis_client.username_for`): keys ``pp:*`` only
  (pullprint.keys), no pub/sub channels, the commands collectors send (strings, lists, hashes,
  expiry, SCAN, scripts for the printer locks, pipelines) and none of the dangerous ones (FLUSHALL,
  KEYS, CONFIG, ACL, DEBUG, SHUTDOWN, MONITOR, CLIENT KILL, …).
- ``admin``: everything; for operators and the test suite (flushdb between tests), never a node.

Users live in an ACL file (``users.acl``, written with ``ACL SAVE``), so a collector added or
revoked while Redis runs stays so across a restart. Redis 7.0 checks no CRL: revoking a collector
is `remove_collector` (``ACL DELUSER``), which also disconnects it; the other collectors keep their
own passwords. Passwords come from files (0600) and reach redis-server only as SHA-256 hashes; they
are never in argv, in a URL or in a log.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.redis_client import connect, username_for
from pullprint.daemons import Daemon, free_port, port_open, require, start
from pullprint.pki import Authority
from pullprint.tls import TlsFiles

# ACL rules per role, after `on` and the password. Applied left to right: nothing, then the
# categories collectors use, then the dangerous ones taken away again.
RULES = {
    "collector": ("resetkeys ~pp:* resetchannels -@all +@connection +@read +@write +@keyspace +@string +@list "
                  "+@hash +@set +@sortedset +@transaction +@scripting -@dangerous -@admin -@pubsub "
                  "-script|flush -script|kill"),
    "admin": "~* &* +@all",
}
DEFAULT_USER = "user default off resetkeys resetchannels -@all nopass"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def password_file(secrets_dir: Path, user: str) -> Path:
    """`user`'s password file (``redis_<user>_password``, 0600), made once with a fresh password."""
    path = secrets_dir / f"redis_{user}_password"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path


def _acl_line(user: str, role: str, password: Path) -> str:
    digest = hashlib.sha256(password.read_text().strip().encode()).hexdigest()
    return f"user {user} reset on #{digest} {RULES[role]}"


@dataclass
class RedisServer:
    """A running redis-server and what its clients need: the URL (no password in it), the CA, the users' passwords."""

    daemon: Daemon
    url: str
    ca_file: Path
    authority: Path
    secrets_dir: Path
    _client_tls: dict[tuple[str, str], TlsFiles] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def password_file(self, user: str) -> Path:
        return password_file(self.secrets_dir, user)

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def client_tls(self, role: str = "admin", name: str = "redis-admin") -> TlsFiles:
        """A client certificate from the cluster CA (issued once), for tests and operators."""
        if (role, name) not in self._client_tls:
            authority = Authority(self.authority)
            cert, key = authority.issue(role, name, ["127.0.0.1"])
            self._client_tls[(role, name)] = TlsFiles(str(authority.cert_file), str(cert), str(key))
        return self._client_tls[(role, name)]

    def client(self, user: str = "admin", tls: TlsFiles | None = None, **options: Any) -> Any:
        """A redis-py client as `user`, over TLS with `tls` (default: an admin certificate)."""
        return connect(self.url, username=user, password=self.password(user), tls=tls or self.client_tls(),
                       **options)

    def add_collector(self, collector_id: str) -> Path:
        """Make (or keep) collector `collector_id`'s own ACL user, live and in the ACL file; its password file."""
        user = username_for(collector_id)
        path = self.password_file(user)
        admin = self.client("admin", socket_timeout=5)
        try:
            admin.execute_command("ACL", "SETUSER", *_acl_line(user, "collector", path).split()[1:])
            admin.execute_command("ACL", "SAVE")
        finally:
            admin.close()
        return path

    def remove_collector(self, collector_id: str) -> None:
        """Revoke collector `collector_id` at Redis: its user deleted (its connections closed at once), saved."""
        user = username_for(collector_id)
        admin = self.client("admin", socket_timeout=5)
        try:
            admin.execute_command("ACL", "DELUSER", user)
            admin.execute_command("ACL", "SAVE")
        finally:
            admin.close()
        self.password_file(user).unlink()

    def collector_settings(self, collector_id: str, tls: TlsFiles) -> dict[str, str]:
        """The collector config fields that point collector `collector_id` (certificate `tls`) at this Redis."""
        user = username_for(collector_id)
        self.add_collector(collector_id)
        return {"redis_url": self.url, "redis_username": user, "redis_password": self.password(user),
                "ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()


def _config(state_dir: Path, port: int, cert: Path, key: Path, ca: Path, acl_file: Path) -> str:
    return "\n".join([
        "bind 127.0.0.1", "port 0", f"tls-port {port}", "protected-mode yes",
        f"tls-cert-file {cert}", f"tls-key-file {key}", f"tls-ca-cert-file {ca}",
        "tls-auth-clients yes", 'tls-protocols "TLSv1.2 TLSv1.3"', "tls-prefer-server-ciphers yes",
        'save ""', "appendonly no", f"dir {state_dir}", f"aclfile {acl_file}",
    ]) + "\n"


def start_redis(state_dir: Path, authority: Path, port: int | None = None, *,
                secrets_dir: Path | None = None, collectors: Iterable[str] = ()) -> RedisServer:
    """A private redis-server on loopback, TLS only, ACL users (no persistence: Redis holds only rebuildable state).

    `authority`: the cluster CA folder (made if missing), which issues the server certificate
    (role ``redis``) and which every client certificate must come from. Passwords are read from
    (or made in) `secrets_dir`, by default ``<state_dir>/secrets``. The ACL file is made on the first
    start with the admin and a user per id in `collectors`; a restart keeps the file as it was left
    (collectors added or removed since).
    """
    paths = require("redis-server")
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = Authority(authority)
    ca.init()
    cert, key = ca.issue("redis", "redis", ["127.0.0.1"], out_dir=state_dir / "tls")
    secrets_dir = secrets_dir or state_dir / "secrets"
    acl_file = state_dir / "users.acl"
    if not acl_file.exists():
        users = [("admin", "admin"), *((username_for(cid), "collector") for cid in collectors)]
        _write_private(acl_file, "\n".join([DEFAULT_USER, *(_acl_line(user, role, password_file(secrets_dir, user))
                                                             for user, role in users)]) + "\n")
    config_path = state_dir / "redis.conf"
    _write_private(config_path, _config(state_dir, port, cert, key, ca.cert_file, acl_file))
    daemon = start("redis", [paths["redis-server"], str(config_path)], log_path=state_dir / "redis.log",
                   ready=lambda: port_open("127.0.0.1", port))
    return RedisServer(daemon, f"rediss://127.0.0.1:{port}/0", ca.cert_file, authority, secrets_dir)
