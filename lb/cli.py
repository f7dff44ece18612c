"""`pullprint lb`: render and check the HAProxy config, drain / ready / maint a collector, show states."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from lb import haproxy, runtime
from pullprint import config
from pullprint.errors import PullprintError


def _settings(args: argparse.Namespace, cluster: dict[str, object] | None = None) -> haproxy.LbSettings:
    """Defaults → the cluster's lb_url → config file (section "lb") / PULLPRINT_LB_* environment → flags."""
    settings = config.load(haproxy.LbSettings, "lb", path=getattr(args, "config", None))
    lb_url = (cluster or {}).get("lb_url")
    if lb_url and settings.bind == haproxy.LbSettings.bind:  # not set by file or environment
        netloc = str(lb_url).split("://", 1)[-1].rstrip("/")
        if ":" in netloc:
            settings.bind = netloc
    for flag in ("bind", "socket_path", "tls_cert", "stats_bind", "balance"):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(settings, flag, value)
    return settings


def _render(args: argparse.Namespace) -> int:
    try:
        cluster = json.loads(Path(args.cluster).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PullprintError("bad-cluster", f"cannot read {args.cluster}: {exc}") from None
    text = haproxy.render(cluster, _settings(args, cluster))
    # Never write a config HAProxy would refuse: check a temporary copy first.
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as tmp:
        tmp.write(text)
    try:
        if not args.no_check:
            haproxy.check(tmp.name)
        if args.output:
            Path(args.output).write_text(text)
        else:
            sys.stdout.write(text)
    finally:
        os.unlink(tmp.name)
    return 0


def _check(args: argparse.Namespace) -> int:
    haproxy.check(args.file, strict=args.strict)
    print(f"{args.file}: valid")
    return 0


def _socket(args: argparse.Namespace) -> str:
    return str(args.socket_path or config.load(haproxy.LbSettings, "lb", path=args.config).socket_path)


def _set_state(args: argparse.Namespace) -> int:
    action = {"drain": runtime.drain, "ready": runtime.ready, "maint": runtime.maint}[args.command]
    socket_path = _socket(args)
    for server in args.servers:
        action(socket_path, server, backend=args.backend)
    states = runtime.server_states(socket_path, args.backend)
    for server in args.servers:
        print(f"{server}: {states.get(server, '?')}")
    return 0


def _status(args: argparse.Namespace) -> int:
    states = runtime.server_states(_socket(args), args.backend)
    if args.json:
        print(json.dumps(states, indent=2))
    else:
        for server, state in states.items():
            print(f"{server:<20} {state}")
    return 0 if any(s == runtime.UP for s in states.values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pullprint lb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="write the HAProxy config for a cluster description")
    p.add_argument("--cluster", required=True, help="cluster.json (needs collectors: [{id, url}])")
    p.add_argument("--config", help="JSON settings file, section \"lb\" (fields of lb.haproxy.LbSettings)")
    p.add_argument("--bind", help="host:port to listen on (default: lb_url of the cluster, else 127.0.0.1:8080)")
    p.add_argument("--socket", dest="socket_path", help="admin socket path")
    p.add_argument("--tls-cert", help="PEM with certificate and key: listen with TLS")
    p.add_argument("--stats", dest="stats_bind", help="loopback host:port of a stats page")
    p.add_argument("--balance", choices=["leastconn", "roundrobin"])
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--no-check", action="store_true", help="do not run haproxy -c on the result")
    p.set_defaults(func=_render)

    p = sub.add_parser("check", help="validate a config file with haproxy -c")
    p.add_argument("file")
    p.add_argument("--strict", action="store_true", help="refuse warnings too (haproxy -dW)")
    p.set_defaults(func=_check)

    for name, text in (("drain", "send no new requests to these collectors (in-flight ones finish)"),
                       ("ready", "put these collectors back into rotation"),
                       ("maint", "take these collectors out completely (no checks)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("servers", nargs="+", metavar="COLLECTOR")
        p.set_defaults(func=_set_state)
    p = sub.add_parser("status", help="show each collector's state (UP, DOWN, DRAIN, MAINT)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)
    for name in ("drain", "ready", "maint", "status"):
        p = sub.choices[name]
        p.add_argument("--socket", dest="socket_path", help="admin socket path (default: PULLPRINT_LB_SOCKET_PATH "
                       "or /run/pullprint/lb-admin.sock)")
        p.add_argument("--backend", default=haproxy.BACKEND)
        p.add_argument("--config", help="JSON settings file, section \"lb\" (for socket_path)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
