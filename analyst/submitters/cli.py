"""`pullprint submitter add|list|revoke HOST`: submitting hosts' credentials, directly on the database."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from analyst.cli import _database_options, _load_config, _now, _session


def _write_token(path: str, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")


def main(argv: list[str], *, out: TextIO | None = None) -> int:
    """`pullprint submitter add|list|revoke`."""
    from analyst.submitters import service

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="pullprint submitter",
                                     description="credentials of the hosts that submit jobs (print servers, "
                                                 "workstations with the queue)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="issue a credential for a host (again: replace it)")
    add.add_argument("host", help="the host's name; jobs it submits record it as their originating host")
    add.add_argument("--description", help="free text (where the host is, who runs it)")
    add.add_argument("--token-file", metavar="FILE",
                     help="write the token to FILE (0600) instead of printing it; give FILE to "
                          "`pullprint queue install --token-file` on that host")
    _database_options(add)
    listing = commands.add_parser("list", help="list submitting hosts")
    _database_options(listing)
    revoke = commands.add_parser("revoke", help="revoke a host's credential (collectors refuse it after "
                                               "their next directory sync)")
    revoke.add_argument("host")
    _database_options(revoke)
    args = parser.parse_args(argv)
    config = _load_config(args)

    if args.command == "list":
        with _session(config) as session:
            for submitter in service.list_submitters(session):
                info = service.submitter_to_dict(submitter)
                state = "active" if info["active"] else f"revoked {info['revoked_at']}"
                print(f"{info['host']}\t{state}\tissued {info['created_at']}\t{info['description']}", file=out)
        return 0
    if args.command == "revoke":
        with _session(config) as session:
            service.revoke(session, args.host, now=_now())
        print(f"revoked submitting host {args.host}", file=out)
        return 0
    service.check_host(args.host)
    with _session(config) as session:
        _, token, created = service.issue(session, args.host, now=_now(), description=args.description)
    if args.token_file:
        _write_token(args.token_file, token)
        where = f"written to {args.token_file}"
    else:
        print(token, file=out)
        where = "printed above (shown once; the analyst keeps only its digest)"
    print(f"{'issued' if created else 're-issued'} a credential for {args.host}: {where}",
          file=sys.stderr if not args.token_file else out)
    return 0
