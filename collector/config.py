"""The collector's settings, with documented defaults (`pullprint.config.load(CollectorConfig, "collector")`)."""

from __future__ import annotations

from dataclasses import dataclass

from pullprint.config import address_problem, url_problem
from pullprint.tls import TlsFiles

RELEASE_MODES = ("direct", "pull")  # "direct": the holder prints; "pull": fetch, then print here


@dataclass
class CollectorConfig:
    id: str = "c1"                      # unique node name; also the HAProxy server name
    site: str = "main"                  # collectors, printers and terminals that sit together
    bind: str = "127.0.0.1:8801"
    public_url: str = ""                # how peers reach this node; defaults to http://<bind>
    spool_dir: str = "./spool"
    installation_key: str = ""          # 64 hex chars, the same on every collector (secret: use _FILE)
    session_key: str = ""               # signs terminal sessions; the same on a site's collectors (secret)
    badge_pepper: str = ""              # HMAC key for badge hashes, shared with the analyst (secret)
    analyst_url: str = "https://127.0.0.1:8700"
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_job_bytes: int = 512 * 1024 * 1024
    replicas: int = 2                   # copies of each job, counting this node's own
    # Copies (this node's included, at most `replicas`) fsynced before a job is acknowledged. 1: a
    # lone collector still takes jobs, under-replicated until a peer returns (site keeps printing);
    # 2: with no live peer it answers 503 and the job waits in the workstation's CUPS queue.
    min_copies_to_ack: int = 1
    repair_grace_seconds: float = 30.0  # a vanished holder counts as holding its copies this long
    repair_rest_ratio: float = 1.0      # after each re-copy, rest this many times as long (logins come first)
    provisional_grace_seconds: float = 120.0  # an unregistered copy older than this was never acknowledged
    release_mode: str = "direct"        # "direct": the holder prints; "pull": fetch, then print here
    session_idle_seconds: int = 60
    login_budget_seconds: float = 2.0
    terminal_job_limit: int = 100       # jobs listed at a terminal (oldest first); "release all" takes every one
    analyst_timeout: float = 1.0        # per call; a dead analyst costs at most this, then the cache answers
    peer_timeout: float = 1.0           # per call to another collector (connect + first byte)
    member_ttl_seconds: float = 3.0     # a collector that stops heartbeating is dead after this
    heartbeat_seconds: float = 1.0
    job_lifetime_hours: float = 8.0
    reconcile_seconds: float = 60.0     # how often the spool is squared with the analyst
    expire_seconds: float = 60.0        # how often expired jobs and interrupted releases are swept
    lease_seconds: int = 120            # how long a release claim is good for
    printer_lock_wait_seconds: float = 60.0  # a printer busy with another job is waited for this long
    output_timeout: float = 30.0        # the whole send to a printer (not a no-progress timer); keep below lease
    output_retries: int = 3             # a printer that refuses the connection is tried again…
    output_retry_backoff: float = 0.5   # …after 0.5 s, 1 s, 2 s; then the job stays held with the reason
    release_wait_seconds: float = 20.0  # a release answers within this; jobs still going out are "queued"
    health_max_age: float = 30.0        # a cached SNMP reading older than this is refreshed at release
    health_timeout: float = 1.0
    poll_interval_seconds: float = 15.0  # SNMP fleet poll; the site's collectors share the printers
    # Terminals (docs/api.md): a release station is enrolled for one printer and logs users in with
    # its own credential. Unenrolled clients (a kiosk page or app without one) may log in at all only
    # where this is on; their "terminal" is then their address, and a login names its printer itself.
    allow_unenrolled_terminals: bool = False
    # The web release station's language (collector/station.py LANGUAGES) when its address has no ?lang=.
    station_language: str = "en"
    # Uploads without an account (collector/uploads.py): a guest gives an address outside the
    # serviced domains (the analyst's guest_printing must be on too) and each document's release
    # code goes there by mail through mail_relay (HOST:PORT), never to the page. At most
    # guest_uploads_per_window uploads per address and per client address in guest_window_seconds.
    guest_uploads: bool = False
    mail_relay: str = ""
    mail_from: str = "pullprint@pullprint.example"
    guest_uploads_per_window: int = 5
    guest_window_seconds: float = 3600.0
    directory_sync_seconds: float = 30.0  # users, printers and credentials from the analyst; a revoked
                                          # terminal is refused within this
    # Login guessing (pullprint/throttle.py): past the free failures within the window each attempt
    # waits twice as long as the one before (from 2 s): 429, then 423 at the lockout for a terminal
    # or an address; a user name (PIN logins) is only ever slowed, to at most one try a minute.
    login_failures_per_terminal: int = 10   # an enrolled terminal, or an unenrolled client's address
    login_failures_per_address: int = 20    # a source address (several terminals may share one)
    login_failures_per_user: int = 5
    login_window_seconds: float = 900.0
    login_lockout_seconds: float = 300.0
    login_user_max_delay_seconds: float = 60.0
    cups_server: str = ""               # cupsd for ipp/ipps/lpd output (HOST:PORT or socket); empty: our own
    cups_state_dir: str = ""            # where our own cupsd lives; defaults to <spool_dir>/cupsd
    workers: int = 2
    threads: int = 8
    # --- Submission (issue 9, docs/cups.md): each submitting host's credential comes from the
    # analyst's directory sync (`pullprint submitter add HOST`), not from a setting. Copies above
    # max_copies are refused (400 too-many-copies). While the analyst is away this node enforces the
    # per-user quota itself, approximately: it counts the user's jobs in its own spool only.
    max_copies: int = 99
    max_held_jobs_per_user: int = 200
    max_held_bytes_per_user: int = 2 * 1024**3
    # --- TLS (docs/security.md): mutual TLS with a certificate from the cluster CA on every call ---
    ca_file: str = ""                   # the cluster CA (`pullprint ca init`)
    cert_file: str = ""                 # this node's certificate, role collector (`pullprint ca issue`)
    key_file: str = ""
    crl_file: str = ""                  # the CA's revocation list; kept fresh from the analyst's copy
    crl_refresh_seconds: float = 30.0   # a revoked node is refused within this (+1 s)
    # No TLS and no node authentication at all: anyone who reaches the port is a node. Never on a
    # network; only for a single-host trial or a debugger (the demo and the tests run TLS).
    insecure_plain_http: bool = False
    # --- Redis over TLS with an ACL user (issue 9, docs/security.md): redis_url is rediss://HOST:PORT/DB,
    # reached with this node's TLS files above; the password is a secret (PULLPRINT_COLLECTOR_REDIS_PASSWORD_FILE),
    # never in the URL. Plain redis:// only with insecure_plain_http. Each collector has its own ACL
    # user, by default collector-<id> (revoking one collector is deleting its user).
    redis_username: str = ""
    redis_password: str = ""
    # Bounded input (issue 9): JSON bodies are small metadata; documents (submit, replica PUT) keep
    # max_job_bytes. A release names at most max_release_jobs jobs ("release all" is not a list).
    max_json_bytes: int = 64 * 1024
    max_release_jobs: int = 500

    @property
    def url(self) -> str:
        return self.public_url or f"{'http' if self.insecure_plain_http else 'https'}://{self.bind}"

    def tls(self) -> TlsFiles | None:
        """This node's TLS files, or None under `insecure_plain_http`."""
        return None if self.insecure_plain_http else TlsFiles(self.ca_file, self.cert_file, self.key_file,
                                                                self.crl_file)

    def problems(self) -> list[str]:
        """What would keep a node with these settings from working (``pullprint collector --check-config``)."""
        found = [f"collector.{name} is not set (give it as a file: PULLPRINT_COLLECTOR_{name.upper()}_FILE)"
                 for name in ("installation_key", "session_key") if not getattr(self, name)]
        tls = self.tls()
        if tls is not None:
            found += tls.problems("collector")
        if self.installation_key and not _is_hex(self.installation_key, 64):
            found.append("collector.installation_key: expected 64 hex characters (32 bytes)")
        found += [p for p in (
            address_problem("collector.bind", self.bind),
            url_problem("collector.public_url", self.public_url, ("http", "https"), required=False),
            url_problem("collector.analyst_url", self.analyst_url, ("http", "https")),
            url_problem("collector.redis_url", self.redis_url, ("redis", "rediss", "unix")),
        ) if p]
        found += _redis_problems(self)
        if self.release_mode not in RELEASE_MODES:
            found.append(f"collector.release_mode: expected one of {', '.join(RELEASE_MODES)}, "
                         f"got {self.release_mode!r}")
        if self.guest_uploads and not self.mail_relay:
            found.append("collector.guest_uploads needs collector.mail_relay (HOST:PORT): a guest's release code "
                         "goes by mail")
        if self.mail_relay and (problem := address_problem("collector.mail_relay", self.mail_relay)):
            found.append(problem)
        found += [f"collector.{name}: must be at least 1" for name in ("replicas", "min_copies_to_ack",
                                                                       "workers", "threads")
                  if getattr(self, name) < 1]
        return found


def _redis_problems(cfg: CollectorConfig) -> list[str]:
    from urllib.parse import urlsplit

    parts = urlsplit(cfg.redis_url)
    found = []
    if parts.password:
        found.append("collector.redis_url: must not carry a password (give it as a file: "
                     "PULLPRINT_COLLECTOR_REDIS_PASSWORD_FILE)")
    if parts.scheme != "rediss" and not cfg.insecure_plain_http:
        found.append("collector.redis_url: expected rediss:// (Redis over TLS), or set collector.insecure_plain_http")
    if parts.scheme == "rediss" and not cfg.redis_password:
        found.append("collector.redis_password is not set (give it as a file: PULLPRINT_COLLECTOR_REDIS_PASSWORD_FILE)")
    return found


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(ch in "0123456789abcdefABCDEF" for ch in text)
