"""Settings of the analyst, loaded with `pullprint.config.load(AnalystConfig, "analyst")`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AnalystConfig:
    """Every analyst setting with its documented default (environment: ``PULLPRINT_ANALYST_<FIELD>``)."""

    # SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://`` (psycopg 3).
    db_url: str = "sqlite:///./analyst.db"
    # Bearer token every node-to-node call carries; required (``PULLPRINT_ANALYST_CLUSTER_TOKEN_FILE``).
    cluster_token: str = ""
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
    # PIN guessing: this many failures for one user name within the window lock it for the window.
    lockout_failures: int = 5
    lockout_window_seconds: float = 300
    # Run `alembic upgrade head` in create_app; `pullprint analyst` does it once before forking
    # the gunicorn workers and turns this off for them.
    auto_migrate: bool = True
    log_level: str = "INFO"
    # `scrypt$…` hash (pullprint.credentials.pin_hash) of the console's password for user `admin`
    # (``PULLPRINT_ANALYST_CONSOLE_PASSWORD_HASH_FILE``); empty: GET /console answers 404.
    console_password_hash: str = ""
