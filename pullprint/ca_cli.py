"""`pullprint ca`: the cluster's certificate authority — create it, issue node certificates, revoke them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pullprint.pki import ROLES, Authority


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pullprint ca", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create the CA (ca.pem, ca.key, crl.pem) in DIR; "
                               "nothing changes if it exists")
    init.add_argument("dir")
    init.add_argument("--name", default="pullprint cluster CA", help="the CA certificate's common name")
    issue = commands.add_parser("issue", help="a new key and certificate for one node")
    issue.add_argument("dir", help="the CA folder")
    issue.add_argument("--role", required=True, choices=ROLES)
    issue.add_argument("--name", required=True, help="the node's name (collector id, host name, operator)")
    issue.add_argument("--host", action="append", default=[],
                       help="a DNS name or address the node is reached at (repeat); servers need theirs")
    issue.add_argument("--out", help="folder to write ROLE-NAME.pem and ROLE-NAME.key (default DIR/issued)")
    issue.add_argument("--days", type=int, default=397)
    revoke = commands.add_parser("revoke", help="revoke a node's certificates and re-issue the CRL")
    revoke.add_argument("dir")
    who = revoke.add_mutually_exclusive_group(required=True)
    who.add_argument("--name", help="every valid certificate of this node (with --role: of that role only)")
    who.add_argument("--serial", type=int, help="one certificate by serial number")
    revoke.add_argument("--role", choices=ROLES)
    crl = commands.add_parser("crl", help="re-sign the CRL (do it within a week of the last: it expires)")
    crl.add_argument("dir")
    listing = commands.add_parser("list", help="the certificates issued, with their state")
    listing.add_argument("dir")
    args = parser.parse_args(argv)

    ca = Authority(Path(args.dir))
    if args.command == "init":
        created = ca.init(args.name)
        print(f"{'created' if created else 'kept the existing'} CA in {ca.directory}: give {ca.cert_file} to every "
              f"host, keep {ca.key_file} here")
    elif args.command == "issue":
        cert, key = ca.issue(args.role, args.name, args.host, out_dir=Path(args.out) if args.out else None,
                             days=args.days)
        print(f"issued {args.role}:{args.name}: {cert} (key {key}, mode 0600)")
    elif args.command == "revoke":
        serials = ca.revoke(role=args.role, name=args.name, serial=args.serial)
        print(f"revoked {len(serials)} certificate(s); new CRL {ca.crl_file} (collectors take it from the "
              "analyst within crl_refresh_seconds)")
    elif args.command == "crl":
        print(f"signed {ca.write_crl()}")
    else:
        for entry in ca.issued():
            state = f"revoked {entry['revoked_at']}" if entry["revoked_at"] else f"valid until {entry['not_after']}"
            print(f"{entry['role']:<13} {entry['name']:<24} serial {entry['serial']}  {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
