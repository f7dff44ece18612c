"""The `pullprint` command: one entry point that hands each subcommand to the component that owns it."""

from __future__ import annotations

import importlib
import sys

from pullprint.errors import PullprintError

# subcommand -> (module:function taking argv and returning an exit code, one-line help)
COMMANDS = {
    "demo": ("localcluster.demo:main", "start a whole cluster on loopback and show what to try"),
    "analyst": ("analyst.cli:main", "run the analyst (central registry) under gunicorn"),
    "collector": ("collector.cli:main", "run one collector node under gunicorn"),
    "mail-gateway": ("email_gateway.server:main", "take mail to the print address and hold each part as a job"),
    "printer-sim": ("printer_sim.cli:main", "run simulated printers (raw 9100 sink + SNMP agent)"),
    "queue": ("cups_backend.cli:main", "install the shared CUPS queue and the backend"),
    "doctor": ("cups_backend.doctor:main", "check cupsd for the 2.4.2-3+deb12u10 whitespace crash, clear poison jobs"),
    "ca": ("pullprint.ca_cli:main", "the cluster CA: create it, issue and revoke node certificates"),
    "lb": ("lb.cli:main", "render, check and control the HAProxy load balancer"),
    "user": ("analyst.cli:user_main", "add, list and remove users (badge, PIN)"),
    "printer": ("analyst.cli:printer_main", "add, list and remove printers"),
    "console-user": ("analyst.cli:console_user_main", "add, list and remove the admin console's accounts"),
    "submitter": ("analyst.submitters.cli:main", "issue, list and revoke submitting hosts' credentials"),
    "terminal": ("analyst.terminals.cli:main", "enrol, list and revoke release terminals; enrollment links"),
}


def _usage() -> str:
    lines = ["usage: pullprint COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "Run `pullprint COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("--version", "version"):
        from pullprint import __version__

        print(f"pullprint {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"pullprint: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[argv[0]]
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        return int(function(argv[1:]) or 0)
    except PullprintError as exc:
        print(f"pullprint {argv[0]}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
