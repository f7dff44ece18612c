"""`pullprint demo`: the embedded default — a whole cluster on loopback, and what to try with it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from pullprint.daemons import MissingProgram
from pullprint.localcluster import LocalCluster, wait_forever


def instructions(cluster: LocalCluster) -> str:
    info = cluster.describe()
    alice = info["users"][0]
    p1 = info["printers"][0]
    lb = info["lb_url"]
    return f"""
pullprint demo is running — {len(info['collectors'])} collectors behind HAProxy at {lb}
  analyst        {info['analyst_url']}
  redis          {info['redis_url']}
  cupsd          {info['cups_server']} (queue {info['queue']})
  printers       {', '.join(p['id'] + ' ' + p['uri'] for p in info['printers'])}
  cluster.json   {cluster.state_dir / 'cluster.json'}

Try it:
  1. Print as {alice['name']} to the shared queue:
       echo "hello from pullprint" > /tmp/hello.txt
       CUPS_SERVER={info['cups_server']} lp -U {alice['name']} -d {info['queue']} /tmp/hello.txt
  2. Badge in at printer {p1['id']} (badge {alice['badge']}, or user {alice['name']} + PIN {alice['pin']}):
       curl -s -X POST {lb}/api/v1/sessions -H 'Content-Type: application/json' \\
            -d '{{"printer": "{p1['id']}", "badge": "{alice['badge']}"}}'
  3. Release everything with the session token from step 2:
       curl -s -X POST {lb}/api/v1/sessions/TOKEN/release -H 'Content-Type: application/json' \\
            -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" -d '{{"all": true}}'
  4. See what the printer received:   ls -l {p1['sink_dir']}
  Or open the release station in a browser: {lb}/release?printer={p1['id']}
  Jam a printer:  curl -s -X POST {info['printer_control_url']}/printers/{p1['id']}/faults -d '{{"set": ["jam"]}}'

Press Ctrl-C to stop everything.
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pullprint demo", description=__doc__)
    parser.add_argument("--collectors", type=int, default=3)
    parser.add_argument("--printers", type=int, default=2)
    parser.add_argument("--state-dir", default="state/demo", help="where everything lives (default state/demo)")
    parser.add_argument("--release-mode", choices=("direct", "pull"), default="direct")
    args = parser.parse_args(argv)
    if args.collectors < 1 or args.printers < 1:
        parser.error("need at least one collector and one printer")

    cluster = LocalCluster(Path(args.state_dir), n_collectors=args.collectors, n_printers=args.printers,
                           release_mode=args.release_mode)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops it even if started with SIGINT ignored
    print("starting the pullprint demo cluster…", file=sys.stderr)
    try:
        cluster.start()
    except MissingProgram as exc:
        print(f"pullprint demo: {exc.message}", file=sys.stderr)
        return 1
    try:
        print(instructions(cluster), flush=True)
        wait_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print("stopping…", file=sys.stderr)
        cluster.stop()
    return 0
