"""LocalCluster: a whole pullprint cluster on loopback — the demo, the end-to-end tests and the fault suite use it.

It starts Redis, an analyst on SQLite, N collectors (each in its own process group), HAProxy in
front of them, simulated printers, and a private cupsd with the shared queue, and writes
`cluster.json` (the contract in docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig
from cups_backend import cli as queue_cli
from cups_backend.doctor import cancel_poison_jobs, crash_culprit, find_poison_jobs
from lb import haproxy
from localcluster.redis_server import RedisServer, start_redis
from printer_sim.cluster import start_sim
from pullprint import daemons, keys, pki
from pullprint.credentials import pin_hash
from pullprint.cupsd import PrivateCupsd
from pullprint.tls import TlsFiles

# PINs that pass the PIN policy (analyst/users/service.py); each cluster draws its own badge numbers
# (random, as real cards are: sequential ones would tell a guesser the next user's), in cluster.json.
DEMO_USERS = [
    {"name": "alice", "pin": "472913", "email": "alice@pullprint.example"},
    {"name": "bob", "pin": "830517", "email": "bob@pullprint.example"},
    {"name": "carol", "pin": "615284", "email": "carol@pullprint.example"},
]
MAIL_DOMAIN = "pullprint.example"  # the demo's serviced domain (users by email)
PRINT_ADDRESS = f"print@{MAIL_DOMAIN}"
PRINTER_MAIL_DOMAIN = f"printers.{MAIL_DOMAIN}"  # mail to PRINTER@ this prints at once (direct_mail printers)
MAIL_HOST = "demo-mail"  # the submitting host the mail gateway is


def demo_users() -> list[dict[str, str]]:
    """DEMO_USERS with a random 10-digit badge number each."""
    badges: list[str] = []
    while len(badges) < len(DEMO_USERS):
        badge = f"{secrets.randbelow(10**10):010d}"
        if badge not in badges:
            badges.append(badge)
    return [{**user, "badge": badge} for user, badge in zip(DEMO_USERS, badges, strict=True)]

KIOSK_LINK_MINUTES = 24 * 60  # the longest an enrolment link may be valid (analyst/terminals/service.py)
SUBMIT_HOST = "demo-cupsd"  # the submitting host the demo's cupsd is (its jobs' origin_host)
PROGRAMS = ("redis-server", "haproxy", "cupsd", "lp", "lpadmin")


def _http(method: str, url: str, context: ssl.SSLContext | None, body: Any = None, timeout: float = 5.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,  # noqa: S310 - loopback URLs we built
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


def _http_ok(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class CollectorProcess:
    id: str
    port: int
    spool_dir: Path
    daemon: daemons.Daemon | None = None
    scheme: str = "https"
    command: tuple[list[str], dict[str, str]] = field(default_factory=lambda: ([], {}))  # how it started: argv, env

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


@dataclass
class LocalCluster:
    state_dir: Path
    n_collectors: int = 3
    n_printers: int = 2
    release_mode: str = "direct"
    replicas: int = 2
    with_cupsd: bool = True
    v3_printers: tuple[str, ...] = ()  # simulated printers that answer only SNMPv3 (authPriv)
    ipp_printers: int = 0  # more printers after the raw 9100 ones: a real ippeveprinter each…
    lpd_printers: int = 0  # …and an LPD receiver each (ipp/lpd go through each collector's own cupsd)
    with_mail: bool = False  # the mail gateway (print by mail) and a test relay keeping its replies
    smtp: str = ""  # the gateway's HOST:PORT once started
    mail_relay: str = ""  # the test relay's HOST:PORT (the gateway's replies, collectors' guest codes)
    direct_mail_printers: tuple[str, ...] = ()  # printers that print mail to their own address at once
    collector_user: str | None = None  # run collectors as this unprivileged user, as deployments do
    # Mutual TLS between every part, as production runs (docs/security.md). False: the loudly named
    # insecure_plain_http everywhere (only to show what it is; nothing else should turn it off).
    tls: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    users: list[dict[str, str]] = field(default_factory=demo_users)
    daemons: dict[str, daemons.Daemon] = field(default_factory=dict)
    collectors: dict[str, CollectorProcess] = field(default_factory=dict)
    secrets: dict[str, Path] = field(default_factory=dict)
    redis_url: str = ""
    redis: RedisServer | None = None  # TLS only, ACL users (localcluster/redis_server.py); redis_client() to talk to it
    analyst_url: str = ""
    lb_url: str = ""
    lb_socket: str = ""
    lb_stats_url: str = ""  # HAProxy's loopback stats page (/stats) and Prometheus exporter (/metrics)
    sim: Any = None
    cupsd: Any = None
    printers: list[dict[str, Any]] = field(default_factory=list)
    ca: pki.Authority | None = None
    # Optional: how collectors reach the analyst and Redis. Called once per name ("analyst", "redis")
    # with the real URL, it returns the URL collectors get instead (the fault suite puts a
    # fault-injecting TCP proxy there). None: collectors talk to them directly.
    collector_link: Callable[[str, str], str] | None = None
    collector_urls: dict[str, str] = field(default_factory=dict)
    cupsd_restarts: list[float] = field(default_factory=list)
    _reported_dead: set[int] = field(default_factory=set)

    # -- secrets ------------------------------------------------------------------------------------
    def _write_secrets(self) -> None:
        folder = self.state_dir / "secrets"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        values = {
            "installation_key": secrets.token_bytes(32).hex(),
            "session_key": secrets.token_urlsafe(32),
            "badge_pepper": secrets.token_urlsafe(32),
            "console_password": secrets.token_urlsafe(12),
        }
        for name, value in values.items():
            path = folder / name
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(value)
            self.secrets[name] = path
        hash_path = folder / "console_password_hash"
        if not hash_path.exists():
            fd = os.open(hash_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(pin_hash(self.secret("console_password")))
        self.secrets["console_password_hash"] = hash_path

    def secret(self, name: str) -> str:
        return self.secrets[name].read_text().strip()

    def _secret_env(self, section: str, names: tuple[str, ...]) -> dict[str, str]:
        return {f"PULLPRINT_{section.upper()}_{n.upper()}_FILE": str(self.secrets[n]) for n in names}

    # -- certificates ------------------------------------------------------------------------------
    def _make_ca(self) -> None:
        """The cluster CA and the certificates of the analyst, the load balancer and an operator."""
        self.ca = pki.Authority(self.state_dir / "ca")
        self.ca.init("pullprint demo CA")
        # ca.pem and the CRL are public; the lp user (CUPS backends) and the collectors' user read them.
        self.ca.directory.chmod(0o755)
        self.node_cert("analyst", "analyst", hosts=("127.0.0.1", "localhost"))
        self.node_cert("admin", "operator")
        cert, key = self.node_cert("lb", "lb", hosts=("127.0.0.1", "localhost"))
        bundle = self.state_dir / "lb" / "lb-bundle.pem"  # HAProxy wants certificate and key in one file
        bundle.parent.mkdir(exist_ok=True)
        fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Path(cert).read_bytes() + Path(key).read_bytes())

    @property
    def ca_file(self) -> str:
        """The cluster CA every client verifies the cluster's servers with ("" without TLS)."""
        return str(self.ca.cert_file) if self.ca else ""

    @property
    def admin_cert(self) -> tuple[str, str] | None:
        """(certificate, key) of the operator: administration at the analyst, any call to a collector."""
        return self.node_cert("admin", "operator") if self.ca else None

    def node_cert(self, role: str, name: str, hosts: tuple[str, ...] = ("127.0.0.1",)) -> tuple[str, str]:
        """(certificate, key) files of `role`:`name`, issued on first use."""
        assert self.ca is not None, "this cluster runs without TLS"
        issued = self.ca.directory / "issued"
        cert, key = issued / f"{role}-{name}.pem", issued / f"{role}-{name}.key"
        if not cert.exists():
            cert, key = self.ca.issue(role, name, hosts)
        return str(cert), str(key)

    def client_context(self, cert: tuple[str, str] | None = None) -> ssl.SSLContext | None:
        """An SSL context that trusts the cluster CA and presents `cert` (default: the operator's)."""
        if not self.ca:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        chosen = cert or self.admin_cert
        assert chosen is not None
        context.load_cert_chain(*chosen)
        return context

    def _tls_env(self, section: str, role: str, name: str, folder: Path | None = None) -> dict[str, str]:
        """PULLPRINT_<SECTION>_{CA,CERT,KEY,CRL}_FILE for a node; with `folder`, its own copies there
        (owned by the collectors' user when there is one), its CRL among them (it keeps that one fresh)."""
        prefix = f"PULLPRINT_{section.upper()}_"
        if not self.ca:
            plain = {f"{prefix}INSECURE_PLAIN_HTTP": "1"}
            if section == "collector" and self.redis is not None:  # Redis stays TLS: a certificate of its CA
                tls = self.redis.client_tls(role, name)
                plain.update({f"{prefix}CA_FILE": tls.ca_file, f"{prefix}CERT_FILE": tls.cert_file,
                              f"{prefix}KEY_FILE": tls.key_file})
            return plain
        cert, key = self.node_cert(role, name)
        crl = str(self.ca.crl_file)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for source, target in ((cert, "cert.pem"), (key, "key.pem"), (crl, "crl.pem")):
                shutil.copyfile(source, folder / target)
                os.chmod(folder / target, 0o600)
            cert, key, crl = str(folder / "cert.pem"), str(folder / "key.pem"), str(folder / "crl.pem")
        return {f"{prefix}CA_FILE": self.ca_file, f"{prefix}CERT_FILE": cert, f"{prefix}KEY_FILE": key,
                f"{prefix}CRL_FILE": crl}

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    # -- start and stop ----------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        daemons.require(*PROGRAMS)
        self.state_dir = self.state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_secrets()
        if self.tls:
            self._make_ca()
        try:
            self._start_redis()
            self._start_analyst()
            self._start_printers()
            self._seed()
            if self.with_mail:
                self._start_mail_relay()
            for index in range(1, self.n_collectors + 1):
                self.start_collector(f"c{index}")
            self._start_lb()
            self._wait_for_site_claims()
            self._enrol_kiosks()
            if self.with_mail:
                self._start_mail()
            if self.with_cupsd:
                self._start_cupsd()
            self.write_cluster_json()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_redis(self, port: int | None = None) -> None:
        # TLS only with the cluster CA (a CA of its own when the cluster runs without TLS: Redis never
        # runs open), ACL users: one per collector, its password that collector's secret redis_password.
        authority = self.ca.directory if self.ca else self.state_dir / "redis" / "ca"
        self.redis = start_redis(self.state_dir / "redis", authority, port, secrets_dir=self.state_dir / "secrets",
                                 collectors=[f"c{index}" for index in range(1, self.n_collectors + 1)])
        self.redis_url = self.redis.url
        self.daemons["redis"] = self.redis.daemon

    def _wait_for_site_claims(self) -> None:
        """Until the collectors have marked this (empty) Redis as holding the site's release claims
        (collector/site_claims.py, two heartbeats): before that, no release goes out while the analyst is away."""
        client = self.redis_client()
        try:
            daemons.wait_until(lambda: bool(client.exists(keys.site_claims_ready(CollectorConfig.site))), 20,
                               "the collectors' site release claims in Redis")
        finally:
            client.close()

    def redis_client(self, **options: Any) -> Any:
        """A client as Redis's admin user, with the operator's certificate (tests and tools; never a node)."""
        assert self.redis is not None, "Redis is not started"
        tls = None
        if self.ca:
            cert, key = self.node_cert("admin", "operator")
            tls = TlsFiles(self.ca_file, cert, key)
        return self.redis.client("admin", tls, **options)

    def stop_redis(self, kill: bool = False) -> None:
        """Stop (or SIGKILL) Redis; it holds only rebuildable state, so everything in it is gone."""
        daemon = self.daemons["redis"]
        daemon.kill() if kill else daemon.stop()

    def start_redis_again(self) -> None:
        """Bring Redis back, empty, on its old port."""
        self._start_redis(port=int(self.redis_url.rsplit(":", 1)[1].split("/", 1)[0]))

    def _collector_url(self, name: str, url: str) -> str:
        if self.collector_link is None:
            return url
        if name not in self.collector_urls:
            self.collector_urls[name] = self.collector_link(name, url)
        return self.collector_urls[name]

    def _start_analyst(self, port: int | None = None) -> None:
        port = port or daemons.free_port()
        self.analyst_url = f"{self.scheme}://127.0.0.1:{port}"
        env = {**os.environ, **self.extra_env, **self._tls_env("analyst", "analyst", "analyst"),
               **self._secret_env("analyst", ("badge_pepper", "console_password_hash")),
               "PULLPRINT_ANALYST_DB_URL": f"sqlite:///{self.state_dir / 'analyst.db'}",
               "PULLPRINT_ANALYST_SERVICED_DOMAINS": json.dumps([MAIL_DOMAIN]),
               # The console drains and readies collectors through HAProxy's admin socket (started later).
               "PULLPRINT_ANALYST_LB_SOCKETS": json.dumps([str(self.state_dir / "lb" / "admin.sock")])}
        self.daemons["analyst"] = daemons.start(
            "analyst", [sys.executable, "-m", "pullprint.cli", "analyst", "--bind", f"127.0.0.1:{port}"],
            env=env, log_path=self.state_dir / "analyst.log",
            ready=lambda: _http_ok(f"{self.analyst_url}/readyz", self.client_context()), timeout=60)

    def stop_analyst(self, kill: bool = False) -> None:
        daemon = self.daemons["analyst"]
        daemon.kill() if kill else daemon.stop()

    def start_analyst_again(self) -> None:
        """Bring the analyst back on its old address (same database)."""
        self._start_analyst(int(self.analyst_url.rsplit(":", 1)[1]))

    def _start_printers(self) -> None:
        ids = [f"p{i}" for i in range(1, self.n_printers + self.ipp_printers + self.lpd_printers + 1)]
        ipp = ids[self.n_printers:self.n_printers + self.ipp_printers]
        lpd = ids[self.n_printers + self.ipp_printers:]
        self.sim = start_sim(len(ids), self.state_dir / "printers", v3=self.v3_printers, ipp=ipp, lpd=lpd)
        self.printers = [dict(p) for p in self.sim.printers]

    def _seed(self) -> None:
        context = self.client_context()
        for index, printer in enumerate(self.printers):
            host, _, port = printer["snmp"].rpartition(":")
            record = {"id": printer["id"], "uri": printer["uri"], "snmp_host": host, "snmp_port": int(port),
                      "snmp_version": printer.get("snmp_version", "2c"),
                      "snmp_community": printer.get("snmp_community", "public"), "site": "main",
                      "location": f"Building A, floor {index + 1}", "tags": ["mono", "a4"], "in_service": True,
                      "unreachable_policy": "refuse", "direct_mail": printer["id"] in self.direct_mail_printers,
                      **{k: v for k, v in printer.items() if k.startswith("snmp_v3_")}}
            _http("POST", f"{self.analyst_url}/api/v1/printers", context, record)
            if self.with_mail and record["direct_mail"]:
                printer["mail_address"] = f"{printer['id']}@{PRINTER_MAIL_DOMAIN}"
        for user in self.users:
            _http("POST", f"{self.analyst_url}/api/v1/users", context, user)
        # One enrolled terminal per printer: its credential (shown once) is printers[i]["terminal_token"].
        for printer in self.printers:
            enrolled = _http("POST", f"{self.analyst_url}/api/v1/terminals", context,
                             {"printer": printer["id"], "description": f"demo release station at {printer['id']}"})
            printer["terminal_id"], printer["terminal_token"] = enrolled["terminal"]["id"], enrolled["token"]
        # Issue 9: the demo's cupsd is a submitting host with its own credential, issued by the analyst
        # (shown once); secrets/submit_token keeps it for the queue, the tests and the load tests.
        issued = _http("POST", f"{self.analyst_url}/api/v1/submitters", context,
                       {"host": SUBMIT_HOST, "description": "the demo's cupsd"})
        path = self.state_dir / "secrets" / "submit_token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(issued["token"])
        self.secrets["submit_token"] = path

    def _enrol_kiosks(self) -> None:
        """A web release station per printer, to be enrolled by opening its one-time link:
        `printers[i]["kiosk_url"]`. Its own terminal, so that redeeming the link (which gives that
        terminal a fresh credential) leaves `terminal_token` working. The code rides in the #fragment,
        which browsers never send to a server; the link is good for one use within a day."""
        context = self.client_context()
        for printer in self.printers:
            added = _http("POST", f"{self.analyst_url}/api/v1/terminals", context,
                          {"printer": printer["id"], "description": f"demo web release station at {printer['id']}"})
            link = _http("POST", f"{self.analyst_url}/api/v1/terminals/{added['terminal']['id']}/enrollment",
                         context, {"valid_minutes": KIOSK_LINK_MINUTES})
            printer["kiosk_url"] = f"{self.lb_url}{link['path']}"

    def start_collector(self, collector_id: str, release_mode: str | None = None) -> CollectorProcess:
        existing = self.collectors.get(collector_id)
        port = existing.port if existing else daemons.free_port()
        process = existing or CollectorProcess(collector_id, port, self.state_dir / collector_id / "spool",
                                               scheme=self.scheme)
        process.spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The demo keeps the unenrolled kiosk page (GET /release?printer=…) and plain logins working.
        env = {**os.environ, "PULLPRINT_COLLECTOR_ALLOW_UNENROLLED_TERMINALS": "1", **self.extra_env,
               **self._tls_env("collector", "collector", collector_id, self.state_dir / collector_id / "tls"),
               **self._collector_secret_env(collector_id),
               "PULLPRINT_COLLECTOR_REPLICAS": str(self.replicas),
               # Guests' release codes (uploads without an account, where guest_uploads is on) go by mail.
               **({"PULLPRINT_COLLECTOR_MAIL_RELAY": self.mail_relay,
                   "PULLPRINT_COLLECTOR_MAIL_FROM": f"pullprint@{MAIL_DOMAIN}"} if self.mail_relay else {})}
        argv = [sys.executable, "-m", "pullprint.cli", "collector", "--id", collector_id,
                "--bind", f"127.0.0.1:{port}", "--spool-dir", str(process.spool_dir),
                "--analyst-url", self._collector_url("analyst", self.analyst_url),
                "--redis-url", self._collector_url("redis", self.redis_url),
                "--release-mode", release_mode or self.release_mode]
        if self.collector_user:
            env["HOME"] = str(self.state_dir / collector_id)
        process.command = (argv, env)
        process.daemon = daemons.start(f"collector {collector_id}", argv, env=env,
                                       log_path=self.state_dir / collector_id / "collector.log",
                                       ready=lambda: _http_ok(f"{process.url}/readyz", self.client_context()),
                                       timeout=60,
                                       user=self.collector_user)
        self.collectors[collector_id] = process
        return process

    def _collector_secret_env(self, collector_id: str) -> dict[str, str]:
        """The collector's secret files (its own Redis password among them); under `collector_user`, its own
        copies that only it can read."""
        assert self.redis is not None, "Redis is not started"
        files = {**{name: self.secrets[name] for name in ("installation_key", "session_key", "badge_pepper")},
                 "redis_password": self.redis.add_collector(collector_id)}
        if not self.collector_user:
            return {f"PULLPRINT_COLLECTOR_{name.upper()}_FILE": str(path) for name, path in files.items()}
        account = pwd.getpwnam(self.collector_user)
        folder = self.state_dir / collector_id / "secrets"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {}
        for name, source in files.items():
            path = folder / name
            shutil.copyfile(source, path)
            os.chmod(path, 0o600)
            env[f"PULLPRINT_COLLECTOR_{name.upper()}_FILE"] = str(path)
        for path in [self.state_dir / collector_id, *(self.state_dir / collector_id).rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        return env

    def revoke_collector(self, collector_id: str) -> None:
        """What an operator does for a compromised collector: revoke its certificate (the analyst, its peers and
        HAProxy refuse it once they have the CRL) and delete its Redis user (refused, and disconnected, at once)."""
        assert self.ca is not None and self.redis is not None
        self.ca.revoke(role="collector", name=collector_id)
        self.redis.remove_collector(collector_id)

    def hand_over_collector(self, collector_id: str, seconds: float = 60.0,
                            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """What an operator runs on a drained collector before retiring it: `pullprint collector --hand-over`,
        with the node's own settings (as its service account)."""
        argv, started_with = self.collectors[collector_id].command
        return subprocess.run([*argv, "--hand-over", "--hand-over-seconds", str(seconds)],
                              env={**started_with, **(env or {})}, capture_output=True, text=True,
                              timeout=seconds + 120, check=False, user=self.collector_user or None)

    def kill_collector(self, collector_id: str) -> None:
        """SIGKILL the collector's whole process group at once (gunicorn master, workers, housekeeping)."""
        process = self.collectors[collector_id]
        if process.daemon:
            process.daemon.kill()

    def stop_collector(self, collector_id: str) -> None:
        process = self.collectors[collector_id]
        if process.daemon:
            process.daemon.stop()

    def _start_lb(self) -> None:
        port = daemons.free_port()
        self.lb_url = f"{self.scheme}://127.0.0.1:{port}"
        self.lb_socket = str(self.state_dir / "lb" / "admin.sock")
        (self.state_dir / "lb").mkdir(exist_ok=True)
        bundle = str(self.state_dir / "lb" / "lb-bundle.pem") if self.tls else None
        stats_port = daemons.free_port()
        self.lb_stats_url = f"http://127.0.0.1:{stats_port}"  # /stats, and /metrics for Prometheus
        settings = haproxy.LbSettings(bind=f"127.0.0.1:{port}", socket_path=self.lb_socket, tls_cert=bundle,
                                      backend_ca_file=self.ca_file or None, backend_client_cert=bundle,
                                      backend_crl_file=str(self.ca.crl_file) if self.ca else None,
                                      stats_bind=f"127.0.0.1:{stats_port}")
        # The analyst too: HAProxy serves its admin console (/console) at the public address.
        cluster: dict[str, object] = {"collectors": [{"id": c.id, "url": c.url} for c in self.collectors.values()],
                                      "analyst_url": self.analyst_url}
        config_path = self.state_dir / "lb" / "haproxy.cfg"
        config_path.write_text(haproxy.render(cluster, settings))
        haproxy.check(config_path)
        self.daemons["haproxy"] = haproxy.start(config_path, self.state_dir / "lb" / "haproxy.log")
        public = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
        daemons.wait_until(lambda: _http_ok(f"{self.lb_url}/readyz", public), 20, "HAProxy with a ready collector")

    def _start_mail_relay(self) -> None:
        """A test relay that keeps every mail it is given in <state>/mail/outbox (replies, guests' codes)."""
        folder = self.state_dir / "mail"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        relay_port = daemons.free_port()
        self.daemons["mail-relay"] = daemons.start(
            "mail relay", [sys.executable, "-m", "localcluster.mail_relay", "--port", str(relay_port),
                           "--dir", str(folder / "outbox")],
            log_path=folder / "relay.log", ready=lambda: daemons.port_open("127.0.0.1", relay_port))
        self.mail_relay = f"127.0.0.1:{relay_port}"

    def _start_mail(self) -> None:
        """The mail gateway, a submitting host with its own credential, behind HAProxy like a print server;
        its replies go to a test relay that keeps them in <state>/mail/outbox."""
        folder = self.state_dir / "mail"
        port = daemons.free_port()
        issued = _http("POST", f"{self.analyst_url}/api/v1/submitters", self.client_context(),
                       {"host": MAIL_HOST, "description": "the demo's mail gateway"})
        token = self.state_dir / "secrets" / "mail_submit_token"
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(issued["token"])
        env = {**os.environ, **self.extra_env, "PULLPRINT_MAIL_SUBMIT_URL": self.lb_url,
               "PULLPRINT_MAIL_SUBMIT_TOKEN_FILE": str(token), "PULLPRINT_MAIL_RELAY": self.mail_relay,
               "PULLPRINT_MAIL_PRINT_ADDRESSES": json.dumps([PRINT_ADDRESS]),
               "PULLPRINT_MAIL_PRINTER_ADDRESS_DOMAIN": PRINTER_MAIL_DOMAIN,
               "PULLPRINT_MAIL_REPLY_FROM": f"pullprint@{MAIL_DOMAIN}"}
        if self.tls:
            cert, key = self.node_cert("mail", "mail", hosts=("127.0.0.1", "localhost"))
            env.update({"PULLPRINT_MAIL_CA_FILE": self.ca_file, "PULLPRINT_MAIL_CERT_FILE": cert,
                        "PULLPRINT_MAIL_KEY_FILE": key})
        else:
            env["PULLPRINT_MAIL_REQUIRE_STARTTLS"] = "0"
        self.daemons["mail"] = daemons.start(
            "mail gateway", [sys.executable, "-m", "pullprint.cli", "mail-gateway", "--bind", f"127.0.0.1:{port}"],
            env=env, log_path=folder / "gateway.log", ready=lambda: daemons.port_open("127.0.0.1", port))
        self.smtp = f"127.0.0.1:{port}"

    @property
    def mail_outbox(self) -> Path:
        """Where the test relay keeps the gateway's replies (one .eml each)."""
        return self.state_dir / "mail" / "outbox"

    def _start_cupsd(self) -> None:
        self.cupsd = PrivateCupsd.start(self.state_dir / "cupsd")
        self._install_queue()

    def _install_queue(self) -> None:
        """The SecurePrint class on the demo's cupsd; run again after a restart (idempotent), as a
        cupsd that crashed within ~30 s of a change never saved it."""
        assert self.cupsd is not None
        address = self.lb_url.split("://", 1)[1]
        tls_options = ["--ca-file", self.ca_file] if self.tls else []
        code = queue_cli.main(["install", "--name", "SecurePrint",
                               "--uri", f"{'pullprints' if self.tls else 'pullprint'}://{address}/", *tls_options,
                               "--cups-server", self.cupsd.server, "--backend-dir", str(self.cupsd.backend_dir),
                               "--server-root", str(self.cupsd.server_root),
                               "--token-file", str(self.secrets["submit_token"]), "--parallel", "4",
                               "--skip-crash-probe"])
        if code != 0:
            raise RuntimeError(f"could not install the SecurePrint queue (exit {code})")

    def describe(self) -> dict[str, Any]:
        return {
            "lb_url": self.lb_url,
            "ca_file": self.ca_file,
            "admin_cert": dict(zip(("cert", "key"), self.admin_cert, strict=True)) if self.admin_cert else None,
            "lb_socket": self.lb_socket,
            "lb_stats_url": self.lb_stats_url,
            "analyst_url": self.analyst_url,
            "collectors": [{"id": c.id, "url": c.url, "pid": c.daemon.pid if c.daemon else 0,
                            "spool_dir": str(c.spool_dir)} for c in self.collectors.values()],
            "redis_url": self.redis_url,
            "cups_server": self.cupsd.server if self.cupsd else "",
            "queue": "SecurePrint",
            "printers": self.printers,
            "printer_control_url": self.sim.describe["control_url"] if self.sim else "",
            "users": self.users,
            "secrets_dir": str(self.state_dir / "secrets"),
            **({"smtp": self.smtp, "print_address": PRINT_ADDRESS, "mail_outbox": str(self.mail_outbox)}
               if self.smtp else {}),
            "console": {"url": f"{self.lb_url}/console", "user": "admin",
                        "password": self.secret("console_password")},
        }

    def write_cluster_json(self) -> Path:
        path = self.state_dir / "cluster.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds demo badges and PINs
        with os.fdopen(fd, "w") as fh:
            json.dump(self.describe(), fh, indent=2)
        os.replace(tmp, path)
        return path

    # -- supervision ------------------------------------------------------------------------------
    def watch(self) -> list[str]:
        """What died since the last call, one line each; a crashed cupsd is restarted here.

        Collectors, the analyst, HAProxy and Redis are reported, not restarted: fault tests kill
        them on purpose and bring them back themselves. cupsd is restarted on its old port (the
        queue is in its saved config), after any saved job that would crash it again is cancelled.
        """
        news = []
        watched = {name: d for name, d in self.daemons.items()}
        watched.update({f"collector {c.id}": c.daemon for c in self.collectors.values() if c.daemon})
        if self.sim is not None:
            watched["printer simulator"] = self.sim.daemon
        for name, daemon in watched.items():
            if daemon.alive():
                self._reported_dead.discard(daemon.pid)
            elif daemon.pid not in self._reported_dead:
                self._reported_dead.add(daemon.pid)
                news.append(f"{name} (pid {daemon.pid}) died: {_exit_text(daemon.process.returncode)}")
        if self.cupsd is not None and not self.cupsd.alive():
            news.extend(self._restart_cupsd())
        return news

    def _restart_cupsd(self) -> list[str]:
        assert self.cupsd is not None
        news = [f"cupsd (pid {self.cupsd.daemon.pid}) died: {_exit_text(self.cupsd.daemon.process.returncode)}"]
        spool = self.cupsd.root / "spool"
        culprit = crash_culprit(self.cupsd.root / "log", request_root=spool)
        if culprit:
            news.append(f"  {culprit}")
        news.extend(f"  {line}" for line in cancel_poison_jobs(find_poison_jobs(spool), cups_server=None,
                                                                request_root=spool))
        self.cupsd_restarts.append(time.monotonic())
        recent = [t for t in self.cupsd_restarts if time.monotonic() - t < 60]
        if len(recent) > 5:
            news.append("  cupsd keeps dying (5 times within a minute); not restarting it again. "
                        "Run `pullprint doctor` to see why.")
            self.cupsd = None
            return news
        try:
            self.cupsd = PrivateCupsd.start(self.cupsd.root, self.cupsd.port)
            with contextlib.redirect_stdout(io.StringIO()):
                self._install_queue()
            news.append(f"  cupsd restarted on {self.cupsd.server} (pid {self.cupsd.daemon.pid})")
        except Exception as exc:  # noqa: BLE001 - say why, and try again at the next watch
            news.append(f"  cupsd could not be restarted: {exc}")
        return news

    def stop(self) -> None:
        """Stop everything this cluster started, newest first, whatever state each one is in."""
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.cupsd is not None:
            steps.append(("cupsd", self.cupsd.stop))
        if "haproxy" in self.daemons:
            steps.append(("haproxy", self.daemons.pop("haproxy").stop))
        for process in reversed(list(self.collectors.values())):
            if process.daemon:
                steps.append((f"collector {process.id}", process.daemon.stop))
        for name in ("mail", "mail-relay"):
            if name in self.daemons:
                steps.append((name, self.daemons.pop(name).stop))
        if self.sim is not None:
            steps.append(("printer simulator", self.sim.stop))
        for name in ("analyst", "redis"):
            if name in self.daemons:
                steps.append((name, self.daemons.pop(name).stop))
        for name, stop in steps:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - one that will not stop must not keep the rest running
                print(f"pullprint: could not stop {name}: {exc}", file=sys.stderr)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
