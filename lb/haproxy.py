"""Render, validate and start the HAProxy config that balances the collectors."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from pullprint import daemons
from pullprint.errors import PullprintError
from pullprint.pki import identity_dns, pool_dns

TEMPLATE_PATH = Path(__file__).with_name("haproxy.cfg.tmpl")
BACKEND = "be_collectors"
FRONTEND = "fe_collectors"
CONSOLE_BACKEND = "be_console"

# HAProxy proxy/server names: letters, digits and - _ . : only.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

_BALANCE_REASONS = {
    "leastconn": "leastconn: uploads and releases hold a connection for seconds to minutes, so new\n"
                 "    # work goes to the node with the fewest in flight; nodes with equal load are\n"
                 "    # rotated, so short requests still spread evenly.",
    "roundrobin": "roundrobin: every node gets the same share of requests, whatever their length.",
}


@dataclass
class LbSettings:
    """How the load balancer listens and behaves. Durations are HAProxy time strings ("300ms", "3m").

    Loaded like every pullprint config (section ``lb``: ``PULLPRINT_LB_BIND`` and so on).
    """

    bind: str = "127.0.0.1:8080"
    """host:port the terminals and CUPS backends connect to (the VIP)."""
    socket_path: str = "/run/pullprint/lb-admin.sock"
    """Admin UNIX socket of the runtime API (drain / ready / status)."""
    tls_cert: str | None = None
    """PEM file holding certificate + key; when set the frontend speaks HTTPS (`bind ... ssl crt`)."""
    stats_bind: str | None = None
    """host:port of the HTML/CSV stats page, e.g. 127.0.0.1:8404; loopback only, no page when None."""
    backend_ca_file: str | None = None
    """CA bundle to verify collectors that are reached over https:// URLs."""
    run_user: str | None = None
    """Drop root to this user after binding (production: "haproxy"); None keeps the caller's user."""
    run_group: str | None = None
    balance: str = "leastconn"
    """leastconn (default) or roundrobin."""
    health_path: str = "/readyz"
    maxconn: int = 4000
    inter: str = "300ms"
    fastinter: str = "200ms"
    downinter: str = "500ms"
    check_timeout: str = "500ms"
    connect_timeout: str = "1s"
    http_request_timeout: str = "10s"
    client_timeout: str = "180s"
    server_timeout: str = "180s"
    # Bounded input (issue 9).
    json_body_limit: int = 1024 * 1024
    """Largest body (bytes) of an API request on the public address other than a submission: 413 above.
    The outer guard: the collector's own cap (64 KiB) answers a clean 413 below it, because it reads
    what it refuses (up to 1 MiB); HAProxy refuses at the headers and closes, which a client still
    sending over TLS may see as a reset instead of the 413."""
    server_maxconn: int = 100
    """Requests in flight per collector; more wait in HAProxy's queue (timeout queue 10s, then 503)."""
    backend_client_cert: str | None = None
    """PEM file (certificate + key) HAProxy presents to https:// collectors (`crt` on the server line)."""
    backend_crl_file: str | None = None
    """The cluster CA's CRL: a revoked collector's certificate fails HAProxy's check (read at start and
    at every reload: `systemctl reload haproxy` after a revocation)."""


def _ms(value: str) -> int:
    """An HAProxy time string in milliseconds ("300ms", "2s", "3m"; bare numbers are ms)."""
    match = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value.strip())
    if not match:
        raise PullprintError("bad-lb-settings", f"not an HAProxy duration: {value!r}")
    number, unit = int(match.group(1)), match.group(2) or "ms"
    factor = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
    return int(number * factor)


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PullprintError("bad-lb-settings", f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def _fmt_ms(ms: int) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms} ms"


def _host_port(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PullprintError("bad-lb-settings", f"{what} must be host:port, got {value!r}")
    return host.strip("[]"), int(port)


def _server_line(collector: dict[str, object], settings: LbSettings, role: str = "collector") -> str:
    sid = str(collector.get("id", ""))
    url = str(collector.get("url", ""))
    if not _NAME.match(sid):
        raise PullprintError("bad-cluster", f"{role} id {sid!r} is not a valid HAProxy server name "
                             "(letters, digits, - _ . : only)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise PullprintError("bad-cluster", f"{role} {sid}: url must be http(s)://host:port, got {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    line = f"    server {sid} {host}:{parts.port} check"
    if parts.scheme == "https":
        if not settings.backend_ca_file:
            raise PullprintError("bad-lb-settings", f"{role} {sid} is https: set backend_ca_file so "
                                 "HAProxy can verify it")
        # verifyhost: the certificate must name this collector (c2.collector.pullprint), so a server
        # line pointing at the wrong host, or at a host with some other cluster certificate, fails.
        # Analysts are a pool: any of them carries analyst.pullprint.
        name = identity_dns("collector", sid) if role == "collector" else pool_dns("analyst")
        line += (f" ssl verify required ca-file {settings.backend_ca_file} verifyhost "
                 f"{name} check-ssl")
        if settings.backend_crl_file:
            line += f" crl-file {settings.backend_crl_file}"
        if settings.backend_client_cert:
            line += f" crt {settings.backend_client_cert}"
    return line


def _analysts(cluster: dict[str, object]) -> list[dict[str, object]]:
    """The analysts serving the console: ``analysts: [{id, url}]``, or cluster.json's one ``analyst_url``."""
    analysts = cluster.get("analysts")
    if analysts is None:
        url = cluster.get("analyst_url")
        return [{"id": "analyst", "url": url}] if url else []
    if not isinstance(analysts, list) or not all(isinstance(a, dict) for a in analysts):
        raise PullprintError("bad-cluster", "analysts must be a list of objects with id and url")
    ids = [str(a.get("id")) for a in analysts]
    if len(set(ids)) != len(ids):
        raise PullprintError("bad-cluster", f"analyst ids must be unique, got {ids}")
    return analysts


def _console_sections(cluster: dict[str, object], settings: LbSettings) -> tuple[str, str]:
    """(the frontend's routing lines, the backend) of the admin console, or ("", "") with no analyst named."""
    analysts = _analysts(cluster)
    if not analysts:
        return "", ""
    routing = (
        "    # The admin console (docs/console.md) and its stylesheet are the analysts' (over mutual TLS);\n"
        "    # everything else here is the collectors'.\n"
        "    acl console_path path /console\n"
        "    acl console_path path_beg /console/\n"
        f"    use_backend {CONSOLE_BACKEND} if console_path\n")
    servers = "\n".join(_server_line(a, settings, role="analyst") for a in analysts)
    backend = (
        f"\nbackend {CONSOLE_BACKEND}\n"
        "    # Any analyst serves any operator: sessions and the sign-in throttle are in the database.\n"
        "    balance roundrobin\n"
        "    option httpchk GET /readyz\n"
        "    http-check expect status 200\n"
        f"    default-server inter 2s fall 2 rise 2\n{servers}\n")
    return routing, backend


def render(cluster: dict[str, object], settings: LbSettings) -> str:
    """The HAProxy config text for `cluster` (the cluster.json shape: needs ``collectors``)."""
    collectors = cluster.get("collectors")
    if not isinstance(collectors, list) or not collectors:
        raise PullprintError("bad-cluster", "the cluster description lists no collectors")
    ids = [str(c.get("id")) for c in collectors if isinstance(c, dict)]
    if len(ids) != len(collectors):
        raise PullprintError("bad-cluster", "each collector must be an object with id and url")
    if len(set(ids)) != len(ids):
        raise PullprintError("bad-cluster", f"collector ids must be unique, got {ids}")
    if settings.balance not in _BALANCE_REASONS:
        raise PullprintError("bad-lb-settings", f"balance must be one of {sorted(_BALANCE_REASONS)}")
    _host_port(settings.bind, "bind")
    if not settings.health_path.startswith("/") or any(ch.isspace() for ch in settings.health_path):
        raise PullprintError("bad-lb-settings", f"health_path must be a path, got {settings.health_path!r}")

    tls_bind_options = tls_frontend_lines = ""
    if settings.tls_cert:
        tls_bind_options = f" ssl crt {settings.tls_cert} alpn http/1.1"
        tls_frontend_lines = "    http-request set-header X-Forwarded-Proto https\n"
    stats_section = ""
    if settings.stats_bind:
        host, _ = _host_port(settings.stats_bind, "stats_bind")
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise PullprintError("bad-lb-settings", "the stats page stays on loopback (stats_bind 127.0.0.1:PORT)")
        stats_section = (
            "\nlisten stats\n"
            "    # Read-only HTML/CSV view (append ;csv); control goes through the admin socket.\n"
            f"    bind {settings.stats_bind}\n"
            "    stats enable\n"
            "    stats uri /stats\n"
            "    stats refresh 5s\n"
            "    # HAProxy's own Prometheus exporter (docs/monitoring.md): servers' state, checks, responses.\n"
            "    http-request use-service prometheus-exporter if { path /metrics }\n"
        )

    console_routing, console_backend = _console_sections(cluster, settings)
    inter, fast, down, check = (_ms(settings.inter), _ms(settings.fastinter), _ms(settings.downinter),
                                _ms(settings.check_timeout))
    for name in ("connect_timeout", "http_request_timeout", "client_timeout", "server_timeout"):
        _ms(getattr(settings, name))
    run_as = ""
    for keyword, account in (("user", settings.run_user), ("group", settings.run_group)):
        if account:
            if not _NAME.match(account):
                raise PullprintError("bad-lb-settings", f"{keyword} {account!r} is not a valid account name")
            run_as += f"    {keyword} {account}\n"
    values = {
        "haproxy_min_version": "2.6",
        "run_as": run_as,
        "maxconn": str(int(settings.maxconn)),
        "server_maxconn": str(_positive(settings.server_maxconn, "server_maxconn")),
        "json_body_limit": str(_positive(settings.json_body_limit, "json_body_limit")),
        "socket_path": settings.socket_path,
        "connect_timeout": settings.connect_timeout,
        "http_request_timeout": settings.http_request_timeout,
        "client_timeout": settings.client_timeout,
        "server_timeout": settings.server_timeout,
        "check_timeout": settings.check_timeout,
        "bind": settings.bind,
        "tls_bind_options": tls_bind_options,
        "tls_frontend_lines": tls_frontend_lines,
        "backend": BACKEND,
        "balance": settings.balance,
        "balance_reason": _BALANCE_REASONS[settings.balance],
        "health_path": settings.health_path,
        "inter": settings.inter,
        "fastinter": settings.fastinter,
        "downinter": settings.downinter,
        "worst_refused": _fmt_ms(inter + fast),
        "worst_frozen": _fmt_ms(inter + check + fast + check),
        "worst_rise": _fmt_ms(down + fast),
        "servers": "\n".join(_server_line(c, settings) for c in collectors),
        "stats_section": stats_section,
        "console_routing": console_routing,
        "console_backend": console_backend,
    }
    return Template(TEMPLATE_PATH.read_text()).substitute(values)


def check(config_path: str | Path, *, strict: bool = False) -> None:
    """Run `haproxy -c` on the file; raise PullprintError with HAProxy's own message if it is refused.

    strict=True also refuses a config that only draws warnings (haproxy -dW).
    """
    haproxy = daemons.require("haproxy")["haproxy"]
    argv = [haproxy, "-c", "-f", str(config_path)]
    if strict:
        argv.insert(1, "-dW")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # Keep HAProxy's ALERT/WARNING lines (they name the file, line and reason), drop its banner.
        output = "\n".join(line for line in (result.stdout + result.stderr).splitlines()
                           if line.strip() and not line.startswith("[NOTICE]"))
        raise PullprintError("bad-lb-config", f"haproxy refused {config_path}:\n{output}", status=500)


def bind_addresses(config_text: str) -> list[tuple[str, int]]:
    """host/port pairs of every `bind` line in a config (used to wait for HAProxy to listen)."""
    found = []
    for line in config_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "bind":
            host, port = _host_port(words[1], "bind")
            found.append(("127.0.0.1" if host in ("", "*", "0.0.0.0") else host, port))  # noqa: S104
    return found


def _make_socket_dir(config_path: Path) -> None:
    """HAProxy does not create the admin socket's folder (e.g. /run/pullprint after a reboot)."""
    for line in config_path.read_text().splitlines():
        words = line.split()
        if words[:2] == ["stats", "socket"] and len(words) > 2 and words[2].startswith("/"):
            Path(words[2]).parent.mkdir(parents=True, exist_ok=True)


def _listening(config_path: Path) -> bool:
    return all(daemons.port_open(h, p) for h, p in bind_addresses(config_path.read_text()))


def start(config_path: str | Path, log_path: str | Path | None = None, *, timeout: float = 10.0) -> daemons.Daemon:
    """Start HAProxy in the foreground (-db) in its own process group; return once every bind answers."""
    config_path = Path(config_path)
    _make_socket_dir(config_path)
    check(config_path)
    haproxy = daemons.require("haproxy")["haproxy"]
    return daemons.start("haproxy", [haproxy, "-db", "-f", str(config_path)],
                         log_path=Path(log_path) if log_path else None,
                         ready=lambda: _listening(config_path), timeout=timeout)


def reload(old: daemons.Daemon, config_path: str | Path, log_path: str | Path | None = None,
           *, socket_path: str | None = None, timeout: float = 10.0) -> daemons.Daemon:
    """Start a new HAProxy on the (changed) config and let the old one finish its connections.

    The new process takes over the listening sockets through the old one's admin socket (-x), so
    no connection is refused in between; the old one gets -sf (finish, then exit).
    """
    config_path = Path(config_path)
    check(config_path)
    haproxy = daemons.require("haproxy")["haproxy"]
    argv = [haproxy, "-db", "-f", str(config_path)]
    if socket_path and Path(socket_path).exists():
        argv += ["-x", socket_path]
    argv += ["-sf", str(old.pid)]
    new = daemons.start("haproxy", argv, log_path=Path(log_path) if log_path else None,
                        ready=lambda: _listening(config_path), timeout=timeout)
    try:
        old.process.wait(timeout)
    except subprocess.TimeoutExpired:
        old.stop()
    return new
