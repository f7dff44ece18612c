"""`pullprint queue install|remove|status|policy`: the shared queue on a workstation or print server."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from cups_backend import config, install


def _read_token(token_file: str) -> str:
    if token_file == "-":  # noqa: S105 - "-" means stdin
        return sys.stdin.readline().strip()
    return Path(token_file).read_text().strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pullprint queue", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default="SecurePrint", help="queue name (default SecurePrint)")
    common.add_argument("--cups-server", default=os.environ.get("CUPS_SERVER"),
                        help="cupsd to talk to, HOST:PORT (default: CUPS_SERVER or the local cupsd)")
    inst = sub.add_parser("install", parents=[common], help="install the backend and create the queue")
    inst.add_argument("--uri", required=True, help="pullprint://HOST:PORT/ or pullprints://HOST:PORT/")
    inst.add_argument("--backend-dir", default=str(install.DEFAULT_BACKEND_DIR))
    inst.add_argument("--server-root", default=str(install.DEFAULT_SERVER_ROOT),
                      help="cupsd's ServerRoot; the credentials go to SERVER_ROOT/pullprint/backend.conf")
    inst.add_argument("--token-file", help="file holding the submit token ('-' reads one line from stdin); "
                      "may be left out when backend.conf already holds one")
    inst.add_argument("--ca-file", help="CA bundle for pullprints:// (default: the system store)")
    inst.add_argument("--skip-crash-probe", action="store_true",
                      help="do not check whether the installed cupsd crashes on spaces in document names")
    inst.add_argument("--info", default="pullprint secure release")
    inst.add_argument("--location", default="")
    inst.add_argument("--parallel", type=int, default=1, metavar="N",
                      help="make NAME a class of N queues, so N jobs stream to the cluster at once (default 1)")
    inst.add_argument("--role", choices=list(install.ROLES), default="workstation",
                      help="workstation: a private queue for this host's users (default); print-server: "
                      "the queue is shared, so other hosts' cupsd and clients may print to it, and printing to "
                      "it needs an authenticated user (see --unauthenticated)")
    inst.add_argument("--unauthenticated", action="store_true",
                      help="print-server only: do NOT require CUPS authentication; the job owner is then "
                      "whatever name the client claims (anyone may print as anyone). Not for production")
    sub.add_parser("remove", parents=[common], help="delete the queue (the backend stays installed)")
    sub.add_parser("status", parents=[common], help="show the queue and its jobs")
    sub.add_parser("policy", help="print the cupsd.conf block --role print-server installs (for a config "
                   "management tool's own cupsd.conf template)")
    return parser


def _warn_if_cupsd_crashes() -> None:
    from cups_backend.doctor import cached_crash_probe

    probe = cached_crash_probe()
    if probe.affected:
        version = f" (cups-daemon {probe.package_version})" if probe.package_version else ""
        print(f"warning: the installed cupsd{version} crashes when a job's document name or a text option "
              "contains a space, tab or line break, and hangs on a control character. lp sends the file's name, "
              "so a user who prints \"Quarterly report.txt\" takes the print service down and loses that job; "
              "a job saved while its queue was stopped crashes cupsd again at every start. The queue is "
              f"installed anyway; run `pullprint doctor` for the choices. ({probe.detail})", file=sys.stderr)


def _install(args: argparse.Namespace) -> int:
    if not args.uri.startswith(("pullprint://", "pullprints://")):
        print("pullprint queue install: --uri must start with pullprint:// or pullprints://", file=sys.stderr)
        return 2
    if "@" in args.uri.split("//", 1)[1].split("/", 1)[0]:
        print("pullprint queue install: put no credentials in the URI (lpstat -v shows it); use --token-file",
              file=sys.stderr)
        return 2
    conf = Path(args.server_root) / config.CONF_RELATIVE
    if args.token_file:
        install.write_credentials(Path(args.server_root), _read_token(args.token_file), args.ca_file)
    elif not conf.exists():
        print(f"pullprint queue install: no token yet; give --token-file (it goes to {conf})",
              file=sys.stderr)
        return 2
    if not args.skip_crash_probe:
        _warn_if_cupsd_crashes()
    authenticate = args.role == "print-server" and not args.unauthenticated
    if authenticate:
        # Before the queue exists: it is created, then given the policy, and cupsd restarts once here.
        changed = install.install_policy(args.cups_server)
        print(f"cupsd.conf: the {install.POLICY} policy {'added' if changed else 'already there'} "
              f"(printing needs an authenticated user)")
    written = install.install_backend(Path(args.backend_dir))
    mode = stat.S_IMODE(written[0].stat().st_mode)
    connection = install.connect(args.cups_server)
    print(f"installed backend {', '.join(map(str, written))} (mode {mode:04o}"
          f"{', runs as root: lp cannot reach the interpreter or the backend folder' if mode == 0o700 else ''})")
    print(f"credentials in {conf} (root:lp 0640)")
    shared = install.ROLES[args.role]
    members: list[str] = []
    if args.parallel > 1:
        members = install.create_class(connection, args.name, args.uri, args.parallel, info=args.info,
                                       location=args.location, shared=shared)
        what = f"class {args.name} of {', '.join(members)} -> {args.uri}"
    else:
        entry = install.create_queue(connection, args.name, args.uri, info=args.info, location=args.location,
                                     shared=shared)
        what = f"queue {args.name} -> {entry.get('device-uri')}"
    if authenticate:
        # Last: from here on changing the queue needs @SYSTEM (root on the domain socket).
        install.require_authentication(connection, [args.name, *members])
        print(f"  printing to {args.name} needs an authenticated user: PeerCred for local users, Basic over "
              f"TLS (or Negotiate) for remote ones; the job's owner is that user")
    elif args.role == "print-server":
        print(f"  warning: --unauthenticated: anyone who reaches this cupsd may print to {args.name} as any user",
              file=sys.stderr)
    # Report what cupsd holds now, not what was asked: that is what decides if workstations can print.
    is_shared = bool(connection.getPrinters().get(args.name, {}).get("printer-is-shared"))
    sharing = "shared: other hosts may print to it" if is_shared else "not shared: only this host may print to it"
    print(f"role {args.role}: {what} (raw, {sharing}, error policy retry-job)")
    if is_shared != shared:
        print(f"pullprint queue install: cupsd did not make {args.name} {'shared' if shared else 'private'}",
              file=sys.stderr)
        return 1
    if shared:
        print("  workstations reach it only if this cupsd listens on the network and allows them "
              "(cupsd.conf Listen and <Location /> Allow, or cupsctl --share-printers)")
    return 0


def _remove(args: argparse.Namespace) -> int:
    connection = install.connect(args.cups_server)
    classes = connection.getClasses()
    if args.name in classes:
        members = list(classes[args.name])
        connection.deleteClass(args.name)
        for member in members:
            connection.deletePrinter(member)
        print(f"removed class {args.name} and its queues {', '.join(members)}")
        return 0
    if args.name not in connection.getPrinters():
        print(f"pullprint queue remove: no queue {args.name!r}", file=sys.stderr)
        return 1
    connection.deletePrinter(args.name)
    print(f"removed queue {args.name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import cups

    connection = install.connect(args.cups_server)
    printers = connection.getPrinters()
    if args.name not in printers:
        print(f"pullprint queue status: no queue {args.name!r}", file=sys.stderr)
        return 1
    entry = printers[args.name]
    states = {cups.IPP_PRINTER_IDLE: "idle", cups.IPP_PRINTER_PROCESSING: "processing",
              cups.IPP_PRINTER_STOPPED: "stopped"}
    accepting = connection.getPrinterAttributes(args.name, requested_attributes=[
        "printer-is-accepting-jobs", "printer-is-shared", "printer-op-policy"])
    print(f"{args.name}: {states.get(entry.get('printer-state'), entry.get('printer-state'))}, "
          f"{'accepting' if accepting.get('printer-is-accepting-jobs') else 'rejecting'} jobs, "
          f"uri {entry.get('device-uri')}, policy {accepting.get('printer-op-policy')}")
    if accepting.get("printer-is-shared") and accepting.get("printer-op-policy") != install.POLICY:
        # cupsd falls back to its default policy when cupsd.conf lost the block ("Bad policy" in error_log).
        print(f"  warning: {args.name} is shared but printing to it needs no authentication (policy "
              f"{accepting.get('printer-op-policy')!r}, not {install.POLICY!r}): anyone may print as anyone; "
              f"run `pullprint queue install --role print-server` again", file=sys.stderr)
    if entry.get("printer-state-message"):
        print(f"  message: {entry['printer-state-message']}")
    jobs = connection.getJobs(which_jobs="not-completed", requested_attributes=[
        "job-id", "job-state", "job-name", "job-originating-user-name", "job-printer-uri",
        "job-state-reasons"])
    job_states = {3: "pending", 4: "held", 5: "processing", 6: "stopped"}
    for job_id, job in sorted(jobs.items()):
        if not str(job.get("job-printer-uri", "")).endswith(f"/{args.name}"):
            continue
        reasons = job.get("job-state-reasons")
        print(f"  job {job_id} {job_states.get(job.get('job-state'), job.get('job-state'))} "
              f"{job.get('job-originating-user-name', '?')} {job.get('job-name', '')!r} {reasons}")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action == "policy":
        sys.stdout.write(install.POLICY_BLOCK)
        return 0
    return {"install": _install, "remove": _remove, "status": _status}[args.action](args)
