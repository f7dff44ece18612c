"""`pullprint analyst`, `pullprint user` and `pullprint printer`: run the service, manage users and printers."""

# The user and printer commands work directly on the database, through the same service functions
# (and the same validation) as the HTTP API.

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy.orm import Session

from analyst.config import AnalystConfig
from analyst.db import Database, upgrade
from nodeserver.command import gunicorn_command
from pullprint import config as pullprint_config
from pullprint.errors import BadRequest


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db-url", help="SQLAlchemy database URL (default: the analyst configuration's)")
    parser.add_argument("--config", help="JSON configuration file (default: $PULLPRINT_CONFIG)")


def _given(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """The settings given on the command line."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "db_url", None):
        given["db_url"] = args.db_url
    return given


def _load_config(args: argparse.Namespace, **overrides: Any) -> AnalystConfig:
    return pullprint_config.load(AnalystConfig, "analyst", path=getattr(args, "config", None),
                                 overrides=_given(args, **overrides))


@contextmanager
def _session(config: AnalystConfig) -> Iterator[Session]:
    upgrade(config.db_url, config.db_password)
    database = Database(config.db_url, config.db_password)
    try:
        with database.session(write=True) as session:
            yield session
    finally:
        database.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


# --- pullprint analyst ---------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """Run the analyst (upgrade the schema once, then exec gunicorn with gthread workers), or check its settings."""
    parser = argparse.ArgumentParser(prog="pullprint analyst", description="run the analyst under gunicorn")
    parser.add_argument("--bind", help="HOST:PORT to listen on (default 127.0.0.1:8700)")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (default 2)")
    parser.add_argument("--check-config", action="store_true",
                        help="check the settings (file, environment, secret files) and exit: OK, or what is wrong")
    _database_options(parser)
    args = parser.parse_args(argv)
    if args.check_config:  # before anything starts or touches the database
        return pullprint_config.check_command(AnalystConfig, "analyst", path=args.config,
                                              overrides=_given(args, bind=args.bind, workers=args.workers))
    config = _load_config(args, bind=args.bind, workers=args.workers)
    problems = config.problems()
    if problems:
        raise BadRequest("bad-config", "; ".join(problems))
    # Once here, before the workers fork, so they do not race each other through the migrations.
    upgrade(config.db_url, config.db_password)
    env = gunicorn_env(config, args.config)
    # The workers' Prometheus figures (analyst/metrics.py): a folder of this run's own.
    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pullprint-analyst-metrics-")
    os.execvpe(sys.executable, gunicorn_argv(config), env)  # noqa: S606
    return 0  # not reached


def gunicorn_argv(config: AnalystConfig) -> list[str]:
    """The gunicorn command line for `config`."""
    return gunicorn_command("analyst.app:create_app()", bind=config.bind, workers=config.workers,
                            threads=config.threads, tls=config.tls(), client_certificate="optional")[0]


def gunicorn_env(config: AnalystConfig, config_path: str | None, environ: dict[str, str] | None = None,
                 ) -> dict[str, str]:
    """The workers' environment: the settings given on the command line travel as PULLPRINT_ANALYST_*.

    Secrets are not copied in: the workers read them the way this process did (file, *_FILE variable).
    """
    env = dict(os.environ if environ is None else environ)
    env.update(gunicorn_command("analyst.app:create_app()", bind=config.bind, workers=config.workers,
                                threads=config.threads, tls=config.tls())[1])
    env.update({"PULLPRINT_ANALYST_DB_URL": config.db_url, "PULLPRINT_ANALYST_BIND": config.bind,
                "PULLPRINT_ANALYST_WORKERS": str(config.workers), "PULLPRINT_ANALYST_AUTO_MIGRATE": "0"})
    if config_path:
        env["PULLPRINT_CONFIG"] = os.path.abspath(config_path)
    return env


# --- pullprint user ------------------------------------------------------------------------------------------

def _read_secret(stdin: TextIO) -> str:
    line = stdin.readline()
    return line.rstrip("\r\n")


def user_main(argv: list[str], *, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """`pullprint user add|list|remove`."""
    from analyst.users import service
    from analyst.users.service import EmailPolicy

    stdin, out = stdin or sys.stdin, out or sys.stdout
    parser = argparse.ArgumentParser(prog="pullprint user", description="add, list and remove users")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user, or change an existing one")
    add.add_argument("name")
    add.add_argument("--badge", help="badge number (visible to other local users; prefer --badge-stdin)")
    add.add_argument("--badge-stdin", action="store_true", help="read the badge number from standard input")
    add.add_argument("--pin", help="PIN (visible to other local users; prefer --pin-stdin or --pin-prompt)")
    add.add_argument("--pin-stdin", action="store_true",
                     help="read the PIN from standard input (after the badge, if --badge-stdin)")
    add.add_argument("--pin-prompt", action="store_true", help="ask for the PIN on the terminal")
    add.add_argument("--email", help="the user's address (mail and uploads), unique, in a serviced domain")
    allowed = add.add_mutually_exclusive_group()
    allowed.add_argument("--deny", action="store_true",
                         help="deny the user: held jobs stay held but are not released, nothing new is taken")
    allowed.add_argument("--allow", action="store_true", help="allow a denied user again")
    _database_options(add)
    listing = commands.add_parser("list", help="list users")
    _database_options(listing)
    remove = commands.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    _database_options(remove)
    args = parser.parse_args(argv)
    config = _load_config(args)

    if args.command == "list":
        with _session(config) as session:
            for user in service.list_users(session):
                info = service.user_to_dict(user)
                print(f"{info['name']}\tbadge={'yes' if info['has_badge'] else 'no'}\t"
                      f"pin={'yes' if info['has_pin'] else 'no'}\t{info['email']}"
                      f"{'' if info['allowed'] else chr(9) + 'DENIED'}", file=out)
        return 0
    if args.command == "remove":
        with _session(config) as session:
            service.remove_user(session, args.name)
        print(f"removed user {args.name}", file=out)
        return 0

    from analyst.validate import user_name

    user_name(args.name, "name")
    badge = _read_secret(stdin) if args.badge_stdin else args.badge
    pin = args.pin
    if args.pin_stdin:
        pin = _read_secret(stdin)
    elif args.pin_prompt:
        pin = getpass.getpass("PIN: ")
    changes: dict[str, Any] = {}
    if badge is not None:
        changes["badge"] = badge
    if pin is not None:
        changes["pin"] = pin
    if args.email is not None:
        changes["email"] = args.email
    if args.deny or args.allow:
        changes["allowed"] = args.allow
    with _session(config) as session:
        user, created = service.upsert_user(session, args.name, pepper=config.badge_pepper.encode(), now=_now(),
                                            policy=EmailPolicy(tuple(config.serviced_domains)), **changes)
        info = service.user_to_dict(user)
    print(f"{'added' if created else 'updated'} user {info['name']} (badge: {'yes' if info['has_badge'] else 'no'}"
          f", PIN: {'yes' if info['has_pin'] else 'no'}{'' if info['allowed'] else ', DENIED'})", file=out)
    return 0


# --- pullprint printer ---------------------------------------------------------------------------------------

def _snmp_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 161
    if not port.isdigit():
        raise BadRequest("bad-field", f"--snmp wants HOST:PORT, got {text!r}")
    return host, int(port)


def _read_key_file(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise BadRequest("bad-field", f"{option}: cannot read {path}: {exc.strerror}") from None


def printer_main(argv: list[str], *, out: TextIO | None = None) -> int:
    """`pullprint printer add|list|remove`."""
    from analyst.printers import service
    from pullprint.documents import LANGUAGES

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="pullprint printer", description="add, list and remove printers")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a printer, or change an existing one")
    add.add_argument("id")
    add.add_argument("--uri", help="device URI: socket://host:9100, ipp://host/ipp/print (required when new)")
    add.add_argument("--snmp", help="HOST[:PORT] of the printer's SNMP agent")
    add.add_argument("--snmp-community")
    add.add_argument("--snmp-version", choices=service.SNMP_VERSIONS)
    add.add_argument("--snmp-v3-user", help="SNMPv3 (USM) user name")
    add.add_argument("--snmp-v3-auth-protocol", choices=service.SNMP_V3_AUTH_PROTOCOLS, type=str.upper)
    add.add_argument("--snmp-v3-auth-key-file", metavar="FILE",
                     help="file holding the SNMPv3 authentication passphrase (never on the command line)")
    add.add_argument("--snmp-v3-priv-protocol", choices=service.SNMP_V3_PRIV_PROTOCOLS, type=str.upper)
    add.add_argument("--snmp-v3-priv-key-file", metavar="FILE", help="file holding the SNMPv3 privacy passphrase")
    add.add_argument("--site")
    add.add_argument("--location", help="free text for people (\"Building A, floor 2, by the kitchen\")")
    add.add_argument("--building")
    add.add_argument("--floor")
    add.add_argument("--room")
    add.add_argument("--tag", dest="tags", action="extend", nargs="+", metavar="T", help="tags (repeatable)")
    add.add_argument("--capability", dest="capabilities", action="extend", nargs="+", metavar="C",
                     help="what it can do: duplex, color, a3, staple, … (repeatable)")
    add.add_argument("--unreachable-policy", choices=service.UNREACHABLE_POLICIES)
    add.add_argument("--document-filter", choices=service.DOCUMENT_FILTERS,
                     help="device-changing PJL/PostScript in a job: strip it (default), refuse the job, or off")
    add.add_argument("--language", dest="languages", action="extend", nargs="+", choices=LANGUAGES, metavar="L",
                     help="what it takes: pdf, postscript, pcl, text (repeatable; default all; a job in another is "
                          "converted at release)")
    add.add_argument("--direct-mail", action=argparse.BooleanOptionalAction, default=None,
                     help="mail to this printer's own address (PRINTER@mail.printer_address_domain) prints "
                          "at once, without a badge: only where that is acceptable (default: off)")
    add.add_argument("--out-of-service", action="store_true", help="take the printer out of service")
    add.add_argument("--service-reason", help="why it is out of service (shown to people)")
    _database_options(add)
    listing = commands.add_parser("list", help="list printers")
    _database_options(listing)
    remove = commands.add_parser("remove", help="remove a printer")
    remove.add_argument("id")
    _database_options(remove)
    args = parser.parse_args(argv)
    config = _load_config(args)

    if args.command == "list":
        with _session(config) as session:
            for printer in service.list_printers(session):
                p = service.printer_to_dict(printer)
                snmp = f"{p['snmp_host']}:{p['snmp_port']}" if p["snmp_host"] else "-"
                place = ", ".join(part for part in (p["building"], p["floor"] and f"floor {p['floor']}",
                                                    p["room"] and f"room {p['room']}") if part)
                print(f"{p['id']}\t{p['uri']}\tsnmp={snmp}\tsite={p['site']}\t{p['location']}\t"
                      f"tags={','.join(p['tags'])}\t{'in service' if p['in_service'] else 'out of service'}\t"
                      f"place={place or '-'}\tcapabilities={','.join(p['capabilities'])}\t"
                      f"filter={p['document_filter']}\tlanguages={','.join(p['languages'])}\t"
                      f"direct_mail={'on' if p['direct_mail'] else 'off'}", file=out)
        return 0
    if args.command == "remove":
        with _session(config) as session:
            service.remove_printer(session, args.id, now=_now())
        print(f"removed printer {args.id}", file=out)
        return 0

    body: dict[str, Any] = {"id": args.id, "uri": args.uri, "snmp_community": args.snmp_community,
                            "snmp_version": args.snmp_version, "site": args.site, "location": args.location,
                            "tags": args.tags, "unreachable_policy": args.unreachable_policy,
                            "building": args.building, "floor": args.floor, "room": args.room,
                            "capabilities": args.capabilities, "service_reason": args.service_reason,
                            "snmp_v3_user": args.snmp_v3_user, "snmp_v3_auth_protocol": args.snmp_v3_auth_protocol,
                            "snmp_v3_priv_protocol": args.snmp_v3_priv_protocol,
                            "document_filter": args.document_filter, "languages": args.languages,
                            "direct_mail": args.direct_mail}
    for name in ("snmp_v3_auth_key", "snmp_v3_priv_key"):
        path = getattr(args, f"{name}_file")
        if path:
            body[name] = _read_key_file(path, f"--{name.replace('_', '-')}-file")
    if args.snmp:
        body["snmp_host"], body["snmp_port"] = _snmp_address(args.snmp)
    if args.out_of_service:
        body["in_service"] = False
    # The same validation as POST /printers.
    fields = service.parse_printer(body, partial=True)
    with _session(config) as session:
        printer, created = service.upsert_printer(session, fields, now=_now())
        info = service.printer_to_dict(printer)
    print(f"{'added' if created else 'updated'} printer {info['id']} ({info['uri']})", file=out)
    return 0



# --- pullprint console-user ------------------------------------------------------------------------------------

def console_user_main(argv: list[str], *, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """`pullprint console-user add|list|remove`: the console's administrator accounts."""
    from analyst.console import service
    from analyst.console.models import ROLES

    stdin, out = stdin or sys.stdin, out or sys.stdout
    parser = argparse.ArgumentParser(prog="pullprint console-user",
                                     description="add, list and remove the admin console's accounts")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add an account, or change its role or password")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, help="read-only (sees everything, changes nothing) or full "
                     "(default for a new account: read-only)")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    secret.add_argument("--password-prompt", action="store_true", help="ask for the password on the terminal")
    _database_options(add)
    listing = commands.add_parser("list", help="list accounts")
    _database_options(listing)
    remove = commands.add_parser("remove", help="remove an account (its sessions end at once)")
    remove.add_argument("name")
    _database_options(remove)
    args = parser.parse_args(argv)
    config = _load_config(args)

    if args.command == "list":
        with _session(config) as session:
            for account in service.list_accounts(session):
                print(f"{account.name}\t{account.role}", file=out)
        return 0
    if args.command == "remove":
        with _session(config) as session:
            service.remove_account(session, args.name)
        print(f"removed console account {args.name}", file=out)
        return 0

    service.check_name(args.name)
    password = None
    if args.password_stdin:
        password = _read_secret(stdin)
    elif args.password_prompt:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise BadRequest("bad-field", "the two passwords differ", field="password")
    if password is not None:
        service.check_password(password)
    with _session(config) as session:
        account, created = service.upsert_account(session, args.name, role=args.role, password=password, now=_now())
        role = account.role
    print(f"{'added' if created else 'updated'} console account {args.name} ({role})", file=out)
    return 0
