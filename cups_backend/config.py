"""The backend's credentials file, ``$CUPS_SERVERROOT/pullprint/backend.conf`` (root:lp 0640).

Either JSON (``{"token": "...", "ca_file": "/path/ca.pem"}``) or ``key = value`` lines (``#``
comments). The token never travels in the device URI or argv, where ``lpstat -v`` and ``ps`` show it.
Optional tuning keys: ``retry_delays`` (seconds between tries, e.g. ``1,3,6``), ``retry_budget``
(seconds for all tries), ``connect_timeout``, ``io_timeout``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SERVER_ROOT = "/etc/cups"
CONF_RELATIVE = Path("pullprint") / "backend.conf"
# 4 tries: now, +1 s, +3 s, +6 s; bounded further by the budget so a job never sits in the
# backend (blocking the queue for everyone) for long.
DEFAULT_RETRY_DELAYS = (1.0, 3.0, 6.0)
DEFAULT_RETRY_BUDGET = 20.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_IO_TIMEOUT = 120.0

# Environment overrides (tests; an operator debugging by hand). cupsd passes a fixed environment,
# so in production only the file counts.
ENV_RETRY_DELAYS = "PULLPRINT_BACKEND_RETRY_DELAYS"
ENV_RETRY_BUDGET = "PULLPRINT_BACKEND_RETRY_BUDGET"
ENV_CONNECT_TIMEOUT = "PULLPRINT_BACKEND_CONNECT_TIMEOUT"
ENV_IO_TIMEOUT = "PULLPRINT_BACKEND_IO_TIMEOUT"


class ConfigError(Exception):
    """The credentials file is missing, unreadable or incomplete."""


class BackendConfig:
    """What backend.conf says (a plain class, not a dataclass: the backend imports this for every job,
    and `dataclasses` costs it more than the rest of the file)."""

    __slots__ = ("token", "ca_file", "retry_delays", "retry_budget", "connect_timeout", "io_timeout")

    def __init__(self, token: str, ca_file: str | None = None,
                 retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS, retry_budget: float = DEFAULT_RETRY_BUDGET,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, io_timeout: float = DEFAULT_IO_TIMEOUT) -> None:
        self.token = token
        self.ca_file = ca_file
        self.retry_delays = retry_delays
        self.retry_budget = retry_budget
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BackendConfig) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:  # never show the token in a traceback or a DEBUG line
        return (f"BackendConfig(token=<{len(self.token)} chars>, ca_file={self.ca_file!r}, "
                f"retry_delays={self.retry_delays!r}, retry_budget={self.retry_budget!r})")


def conf_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("CUPS_SERVERROOT") or DEFAULT_SERVER_ROOT) / CONF_RELATIVE


def parse(text: str) -> dict[str, str]:
    """JSON object or ``key = value`` lines, as a flat dict of strings."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except RecursionError:
            raise ConfigError("the credentials file's JSON is nested too deeply") from None
        if not isinstance(data, dict):
            raise ConfigError("the credentials file must hold a JSON object")
        return {str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in data.items()}
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:  # not quoted: the line may be a bare token, and ERROR lines reach `lpstat -p`
            raise ConfigError(f"line {number} has no '='")
        values[key.strip().lower().replace("-", "_")] = value.strip().strip('"').strip("'")
    return values


def _delays(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.replace(" ", "").split(",") if part)


def load(environ: Mapping[str, str]) -> BackendConfig:
    path = conf_path(environ)
    try:
        values = parse(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"credentials file {path} is missing (run `pullprint queue install`)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.__class__.__name__}") from None
    token = values.get("token", "").strip()
    if not token:
        raise ConfigError(f"credentials file {path} has no token")
    try:
        cfg = BackendConfig(
            token=token,
            ca_file=values.get("ca_file") or values.get("cafile") or None,
            retry_delays=_delays(environ.get(ENV_RETRY_DELAYS) or values.get("retry_delays", ""))
            or DEFAULT_RETRY_DELAYS,
            retry_budget=float(environ.get(ENV_RETRY_BUDGET) or values.get("retry_budget")
                               or DEFAULT_RETRY_BUDGET),
            connect_timeout=float(environ.get(ENV_CONNECT_TIMEOUT) or values.get("connect_timeout")
                                  or DEFAULT_CONNECT_TIMEOUT),
            io_timeout=float(environ.get(ENV_IO_TIMEOUT) or values.get("io_timeout") or DEFAULT_IO_TIMEOUT),
        )
    except ValueError:
        raise ConfigError(f"credentials file {path}: a timeout or delay is not a number") from None
    # Sockets and sleep() raise on a negative or NaN time, so such values are refused here.
    if not all(math.isfinite(t) and t > 0 for t in (cfg.connect_timeout, cfg.io_timeout)) \
            or not all(math.isfinite(t) and t >= 0 for t in (cfg.retry_budget, *cfg.retry_delays)):
        raise ConfigError(f"credentials file {path}: timeouts must be positive and delays not negative")
    return cfg


def render(token: str, ca_file: str | None = None) -> str:
    """The file's text, as `pullprint queue install` writes it."""
    data: dict[str, str] = {"token": token}
    if ca_file:
        data["ca_file"] = ca_file
    return json.dumps(data, indent=2) + "\n"
