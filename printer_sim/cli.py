"""`pullprint printer-sim`: run N simulated printers in the foreground until SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
import tempfile
from pathlib import Path

from printer_sim.server import Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pullprint printer-sim", description=__doc__)
    parser.add_argument("--printers", type=int, default=2, help="how many printers (ids p1..pN)")
    parser.add_argument("--state-dir", type=Path, default=None, help="sink files go to DIR/sinks/<id>/")
    parser.add_argument("--host", default="127.0.0.1", help="address every port binds to")
    parser.add_argument("--control-port", type=int, default=0, help="HTTP control API port (0: any free)")
    parser.add_argument("--describe", type=Path, default=None,
                        help="write ports and URIs as JSON here once everything listens")
    parser.add_argument("--snmp-mode", choices=["port", "none"], default="port",
                        help="port: one UDP port per printer, all in one SNMP engine; none: no SNMP agent")
    parser.add_argument("--community", default="public", help="v1/v2c community of the printers")
    parser.add_argument("--v3", default="", help="comma-separated printer ids that answer only SNMPv3 (USM)")
    parser.add_argument("--ipp", default="", help="comma-separated printer ids that take jobs over IPP "
                        "(a real ippeveprinter) instead of raw 9100")
    parser.add_argument("--lpd", default="", help="comma-separated printer ids that take jobs over LPD")
    parser.add_argument("--raw-port", type=int, default=0,
                        help="printer N's raw port is this + N - 1 (e.g. 9100); 0: any free port")
    parser.add_argument("--snmp-port", type=int, default=0,
                        help="printer N's SNMP port is this + N - 1; 0: any free port")
    parser.add_argument("--ipp-port", type=int, default=0,
                        help="the IPP printers' ports, from this one up; 0: any free port")
    parser.add_argument("--ipp-host", default="localhost",
                        help="the host name the IPP printers give in their URIs")
    parser.add_argument("--v3-user", default="pullprint")
    parser.add_argument("--v3-auth-key", default="pullprint-auth", help="SHA auth pass phrase (>= 8 chars)")
    parser.add_argument("--v3-priv-key", default="pullprint-priv", help="AES priv pass phrase (>= 8 chars)")
    return parser


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def _ids(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split(",") if p)


async def _run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="printer-sim-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    # each printer: a listening TCP socket and a UDP socket, plus connections in flight
    _raise_fd_limit(args.printers * 2 + 512)
    sim = Simulator(args.printers, state_dir, host=args.host, control_port=args.control_port,
                    v3_printers=tuple(p for p in args.v3.split(",") if p), community=args.community,
                    v3_user=args.v3_user, v3_auth_key=args.v3_auth_key, v3_priv_key=args.v3_priv_key,
                    snmp=args.snmp_mode != "none", ipp_printers=_ids(args.ipp), lpd_printers=_ids(args.lpd),
                    raw_port=args.raw_port, snmp_port=args.snmp_port, ipp_port=args.ipp_port,
                    ipp_host=args.ipp_host)
    await sim.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, sim.request_stop)
    if args.describe:
        sim.write_describe(args.describe)
    print(f"printer-sim: {args.printers} printers, control API {sim.control_url}, state {state_dir}",
          file=sys.stderr, flush=True)
    try:
        await sim.run_forever()
    finally:
        sim.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.printers < 1:
        print("printer-sim: --printers must be at least 1", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
