"""Settings of the analyst, loaded with `pullprint.config.load(AnalystConfig, "analyst")`, and their checks."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from pullprint.config import address_problem
from pullprint.tls import TlsFiles


@dataclass
class AnalystConfig:
    """Every analyst setting with its documented default (environment: ``PULLPRINT_ANALYST_<FIELD>``)."""

    # SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://`` (psycopg 3).
    db_url: str = "sqlite:///./analyst.db"
    # HMAC key for badge numbers; required to store or look up badges (``…_BADGE_PEPPER_FILE``).
    badge_pepper: str = ""
    bind: str = "127.0.0.1:8700"
    workers: int = 2
    threads: int = 4
    # How long a held job waits for its owner before it expires.
    job_lifetime_hours: float = 8
    # A collector whose last heartbeat is older than this is reported as not alive.
    collector_dead_after: float = 5.0
    default_lease_seconds: float = 120
    max_lease_seconds: float = 3600
    # A releasing job whose lease lapsed this long ago (its collector died mid-release) goes back to held
    # as `interrupted` at the next POST /maintenance/expire.
    lease_grace_seconds: float = 30
    # Login guessing (pullprint/throttle.py, the collectors' limits): failures are remembered for the
    # window; past the free ones each attempt waits twice as long as the one before (from 2 s). A
    # user name typed (PIN logins; `lockout_failures` free) is only slowed, to one try a minute at
    # most; a terminal or a source address reaches a lockout (423) of `login_lockout_seconds`.
    lockout_failures: int = 5
    lockout_window_seconds: float = 900
    login_failures_per_terminal: int = 10
    login_failures_per_address: int = 20
    login_lockout_seconds: float = 300
    login_user_max_delay_seconds: float = 60
    # Run `alembic upgrade head` in create_app; `pullprint analyst` does it once before forking
    # the gunicorn workers and turns this off for them.
    auto_migrate: bool = True
    log_level: str = "INFO"
    # `scrypt$…` hash (pullprint.credentials.pin_hash) of the password of the console's built-in full
    # account `admin` (``PULLPRINT_ANALYST_CONSOLE_PASSWORD_HASH_FILE``); accounts of its own come from
    # `pullprint console-user add`. Neither: /console answers 404.
    console_password_hash: str = ""
    # Console password guessing (issue 9), per source address (the load balancer's X-Forwarded-For),
    # counted in SQL (every worker and analyst sees the same count): this many failures within the
    # window are free, then each attempt waits twice as long as the one before (from 2 s, at most
    # console_max_delay_seconds): 429.
    console_free_failures: int = 5
    console_window_seconds: float = 900
    console_max_delay_seconds: float = 300
    # Console sessions (docs/console.md): over after this long unused, and this long after the login at most.
    console_idle_minutes: float = 30
    console_session_hours: float = 12
    # HAProxy's admin sockets (lb.socket_path of each load balancer): the console drains and readies
    # collectors through every one of them. Empty: the console shows no drain/ready actions.
    lb_sockets: list[str] = field(default_factory=list)
    # --- Submission quota (issue 9, docs/cups.md): held jobs one user may have, counted at registration
    # (held, releasing and failed jobs: their copies fill the collectors' spools). 0 = no limit.
    max_held_jobs_per_user: int = 200
    max_held_bytes_per_user: int = 2 * 1024**3
    # --- Users by email (mail and upload intake, docs/email.md): addresses of these domains are served
    # (none listed: any domain); a new address becomes a user on first use only with auto_provision.
    serviced_domains: list[str] = field(default_factory=list)
    auto_provision: bool = False
    # Mail from outside the serviced domains is held for a guest, each job with a release code mailed
    # to the sender (HP's job PIN); off: refused as not-serviced.
    guest_printing: bool = False
    # --- TLS (docs/security.md): mutual TLS; callers are authorised by the role in their certificate ---
    ca_file: str = ""           # the cluster CA (`pullprint ca init`)
    cert_file: str = ""         # this analyst's certificate, role analyst (`pullprint ca issue`)
    key_file: str = ""
    crl_file: str = ""          # the CA's revocation list, re-read when it changes; collectors fetch it here
    # No TLS and no caller authentication at all: anyone who reaches the port is an administrator.
    # Never on a network; only for a single-host trial (the demo and the tests run TLS).
    insecure_plain_http: bool = False
    # --- PostgreSQL over TLS with SCRAM (issue 9, docs/security.md): db_url says how to check the server
    # (``?sslmode=verify-full&sslrootcert=<CA>``); the role's password is a secret given apart from the URL
    # (``PULLPRINT_ANALYST_DB_PASSWORD_FILE``), never inside it.
    db_password: str = ""

    def tls(self) -> TlsFiles | None:
        """This analyst's TLS files, or None under `insecure_plain_http`."""
        return None if self.insecure_plain_http else TlsFiles(self.ca_file, self.cert_file, self.key_file,
                                                                self.crl_file)

    def problems(self) -> list[str]:
        """What would keep an analyst with these settings from working (``pullprint analyst --check-config``)."""
        from analyst.console.service import looks_like_hash

        found = [f"analyst.{name} is not set (give it as a file: PULLPRINT_ANALYST_{name.upper()}_FILE)"
                 for name in ("badge_pepper",) if not getattr(self, name)]
        tls = self.tls()
        if tls is not None:
            found += tls.problems("analyst")
        found += [p for p in (_db_url_problem(self.db_url), address_problem("analyst.bind", self.bind)) if p]
        found += _db_security_problems(self.db_url)
        if self.console_password_hash and not looks_like_hash(self.console_password_hash):
            found.append("analyst.console_password_hash: not a scrypt$… hash (make one with "
                         "pullprint.credentials.pin_hash)")
        for domain in self.serviced_domains:
            if not DOMAIN.match(domain):
                found.append(f"analyst.serviced_domains: {domain!r} is not a lower-case domain name (example.org)")
        if self.log_level not in logging.getLevelNamesMapping():  # what logging's setLevel takes
            found.append(f"analyst.log_level: expected one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        found += [f"analyst.{name}: must be at least 1" for name in ("workers", "threads") if getattr(self, name) < 1]
        return found


DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _db_security_problems(url: str) -> list[str]:
    from analyst.db import password_in_url

    if not url.startswith(("postgresql", "postgres:")):
        return []
    found = []
    if password_in_url(url):
        found.append("analyst.db_url: must not carry the password (give it as a file: "
                     "PULLPRINT_ANALYST_DB_PASSWORD_FILE)")
    if "sslmode=verify-full" not in url:
        found.append("analyst.db_url: PostgreSQL must be reached over TLS with its certificate checked "
                     "(add ?sslmode=verify-full&sslrootcert=<the cluster CA>)")
    return found


def _db_url_problem(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from analyst.db import normalize_url

    try:
        backend = make_url(normalize_url(url)).get_backend_name()
    except ArgumentError:
        return "analyst.db_url: not a database URL (sqlite:///PATH or postgresql://USER@HOST/DB)"
    if backend not in ("sqlite", "postgresql"):
        return f"analyst.db_url: the analyst runs on SQLite or PostgreSQL, not {backend}"
    return None
