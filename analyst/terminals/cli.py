"""`pullprint terminal add|list|revoke|link`: enrolled release terminals, directly on the database."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TextIO

from analyst.cli import _database_options, _load_config, _now, _session


def main(argv: list[str], *, out: TextIO | None = None) -> int:
    """`pullprint terminal add|list|revoke|link` (the same service functions as the HTTP API)."""
    from analyst.terminals import service

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="pullprint terminal",
                                     description="release terminals: each enrolled for one printer, with its own "
                                                 "revocable credential")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="enrol a terminal for a printer; prints its credential (shown once)")
    add.add_argument("printer", help="the printer the terminal stands at")
    add.add_argument("--id", help="the terminal's id (default: t-<random>)")
    add.add_argument("--description", help="free text (where it is, what it is)")
    _database_options(add)
    listing = commands.add_parser("list", help="list terminals")
    _database_options(listing)
    revoke = commands.add_parser("revoke", help="revoke a terminal (collectors refuse it from their next "
                                               "directory sync on; the analyst at once)")
    revoke.add_argument("id")
    _database_options(revoke)
    link = commands.add_parser("link", help="a one-time enrollment link for a kiosk page (replaces the "
                                           "terminal's credential when used)")
    link.add_argument("id")
    link.add_argument("--base-url", help="the release stations' address (the load balancer's), e.g. "
                                         "https://print.example.org; without it only the path is printed")
    link.add_argument("--valid-minutes", type=float, default=service.ENROLLMENT_VALID.total_seconds() / 60,
                      help="how long the link can be used (default 15)")
    _database_options(link)
    args = parser.parse_args(argv)
    config = _load_config(args)

    if args.command == "list":
        with _session(config) as session:
            for terminal in service.list_terminals(session):
                info = service.terminal_to_dict(terminal, now=_now())
                state = "active" if info["active"] else (f"revoked {info['revoked_at']}" if info["revoked_at"]
                                                         else "waiting for enrollment")
                pending = f"\tlink until {info['enrollment_expires_at']}" if info["enrollment_pending"] else ""
                print(f"{info['id']}\tprinter={info['printer']}\t{state}{pending}\t{info['description']}", file=out)
        return 0
    if args.command == "revoke":
        with _session(config) as session:
            service.revoke_terminal(session, args.id, now=_now())
        print(f"revoked terminal {args.id}", file=out)
        return 0
    if args.command == "link":
        with _session(config) as session:
            terminal, code = service.new_enrollment(session, args.id, now=_now(),
                                                    valid=timedelta(minutes=args.valid_minutes))
            expires = service.terminal_to_dict(terminal, now=_now())["enrollment_expires_at"]
        # The code travels in the URL's fragment (#…), which browsers never send to a server or its logs.
        print(f"{(args.base_url or '').rstrip('/')}/release/enroll#code={code}", file=out)
        print(f"open it once on the station of terminal {args.id} before {expires} (or type the code {code} "
              "at /release/enroll)", file=sys.stderr)
        return 0
    with _session(config) as session:
        terminal, token = service.add_terminal(session, args.printer, now=_now(),
                                               description=args.description or "", terminal_id=args.id)
        terminal_id = terminal.id
    print(token, file=out)
    print(f"enrolled terminal {terminal_id} for printer {args.printer}: its credential is printed above (shown "
          "once; the analyst keeps only its digest). Terminals send it as `Authorization: Bearer`.",
          file=sys.stderr)
    return 0
