"""`pullprint demo`: the embedded default — a whole cluster on loopback, and what to try with it."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from cups_backend.doctor import probe_whitespace_crash
from localcluster.cluster import LocalCluster
from pullprint.daemons import MissingProgram


def instructions(cluster: LocalCluster) -> str:
    info = cluster.describe()
    alice = info["users"][0]
    ipp = [p for p in info["printers"] if p["uri"].startswith("ipp://")]
    target = ipp[0] if ipp else info["printers"][0]  # the tour ends at the IPP printer when there is one
    scheme = target["uri"].split(":")[0]
    p1 = info["printers"][0]
    lb = info["lb_url"]
    console = info["console"]
    mail_text = (f"From: {alice['email']}\\r\\nTo: {info['print_address']}\\r\\nSubject: Quarterly report"
                 "\\r\\n\\r\\nQ3 revenue up\\r\\n")
    mailed = [p for p in info["printers"] if p.get("mail_address")]
    direct = (f"     Or mail to printer {mailed[0]['id']}'s own address, {mailed[0]['mail_address']}: it prints "
              f"there at once, no badge\n     (--mail-rcpt {mailed[0]['mail_address']}; only printers set so with "
              f"`pullprint printer add ID --direct-mail`)\n") if mailed else ""
    return f"""
pullprint demo is running — {len(info['collectors'])} collectors behind HAProxy at {lb}
  analyst        {info['analyst_url']}
  redis          {info['redis_url']}
  cupsd          {info['cups_server']} (queue {info['queue']})
  printers       {', '.join(p['id'] + ' ' + p['uri'] for p in info['printers'])}
  cluster.json   {cluster.state_dir / 'cluster.json'}
  cluster CA     {info['ca_file']} (every part speaks TLS; node calls are mutual TLS)

Try it:
  1. Print as {alice['name']} to the shared queue (held, not printed):
       printf 'Q3 revenue up\\n' > "/tmp/Quarterly report.txt"
       CUPS_SERVER={info['cups_server']} lp -U {alice['name']} -d {info['queue']} -t "Quarterly report" \\
            < "/tmp/Quarterly report.txt"
  2. Badge in at printer {target['id']} ({scheme}; badge {alice['badge']}, or {alice['name']} + PIN {alice['pin']}):
       curl -s --cacert {info['ca_file']} -X POST {lb}/api/v1/sessions -H 'Content-Type: application/json' \\
            -H 'Authorization: Bearer {target['terminal_token']}' -d '{{"badge": "{alice['badge']}"}}'
       (the Bearer credential is printer {target['id']}'s enrolled terminal; cluster.json has each printer's)
  3. Release everything with the session token from step 2 (from the same terminal: its credential again):
       curl -s --cacert {info['ca_file']} -X POST {lb}/api/v1/sessions/TOKEN/release \\
            -H 'Authorization: Bearer {target['terminal_token']}' -H 'Content-Type: application/json' \\
            -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" -d '{{"all": true}}'
  4. See what the printer received:   ls -l {target['sink_dir']}
  5. Print by mail (held for {alice['name']}, whose address is {alice['email']}; badge in as in 2 and 3):
       printf '{mail_text}' > /tmp/mail.eml
       curl -s --url smtp://{info['smtp']} --ssl-reqd --cacert {info['ca_file']} --mail-from {alice['email']} \\
            --mail-rcpt {info['print_address']} --upload-file /tmp/mail.eml
     The reply the gateway sent (what is held, what was not): ls {info['mail_outbox']}
{direct}  6. Or upload from a phone or laptop (user alice or {alice['email']}, PIN {alice['pin']}): {lb}/upload
  Or open printer {p1['id']}'s release station in a browser (a one-time enrolment link; cluster.json has
  each printer's kiosk_url): {p1['kiosk_url']}
  (the browser does not know the demo's CA: accept its certificate, or import {info['ca_file']})
  Admin console:  {console['url']}  (user {console['user']}, password {console['password']})
  Jam a printer:  curl -s -X POST {info['printer_control_url']}/printers/{p1['id']}/faults -d '{{"set": ["jam"]}}'

Press Ctrl-C to stop everything.
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pullprint demo", description=__doc__)
    parser.add_argument("--collectors", type=int, default=3)
    parser.add_argument("--printers", type=int, default=2, help="raw 9100 printers (default 2)")
    parser.add_argument("--ipp-printers", type=int, default=1,
                        help="IPP printers after those, each a real ippeveprinter (default 1)")
    parser.add_argument("--state-dir", default="state/demo", help="where everything lives (default state/demo)")
    parser.add_argument("--release-mode", choices=("direct", "pull"), default="direct")
    args = parser.parse_args(argv)
    if args.collectors < 1 or args.printers < 1 or args.ipp_printers < 0:
        parser.error("need at least one collector and one printer")

    cluster = LocalCluster(Path(args.state_dir), n_collectors=args.collectors, n_printers=args.printers,
                           ipp_printers=args.ipp_printers, release_mode=args.release_mode, with_mail=True,
                           # the last printer prints mail to its own address at once (p3@printers.…)
                           direct_mail_printers=(f"p{args.printers + args.ipp_printers}",))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops it even if started with SIGINT ignored
    print("starting the pullprint demo cluster…", file=sys.stderr)
    warning = cups_crash_warning()
    try:
        cluster.start()
    except MissingProgram as exc:
        print(f"pullprint demo: {exc.message}", file=sys.stderr)
        return 1
    try:
        print(instructions(cluster), flush=True)
        if warning:
            print(warning, file=sys.stderr, flush=True)
        supervise(cluster)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        # A second Ctrl-C while stopping must not leave half the cluster running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping…", file=sys.stderr)
        cluster.stop()
    return 0


def supervise(cluster: LocalCluster, interval: float = 1.0) -> None:
    """Say on the console, within a second or two, whatever the demo started that died."""
    while True:
        for line in cluster.watch():
            print(f"pullprint demo: {line}", file=sys.stderr, flush=True)
        time.sleep(interval)


def cups_crash_warning() -> str:
    """A warning when this machine's cupsd crashes on document names with spaces (docs/cups.md)."""
    try:
        probe = probe_whitespace_crash()
    except Exception as exc:  # noqa: BLE001 - the demo runs anyway; doctor can look closer
        return f"pullprint demo: could not check this machine's cupsd for the whitespace crash ({exc})"
    if not probe.affected:
        return ""
    return (f"pullprint demo: WARNING: this machine's cupsd ({probe.package_version or 'installed'}) crashes "
            "when a document name contains a space or a control character, e.g. `lp \"Quarterly report.pdf\"`.\n"
            "  The job is lost; the demo restarts cupsd and cancels any saved job that would crash it again.\n"
            "  Print such files as `lp -t \"Quarterly report\" < \"Quarterly report.pdf\"`, and run "
            "`pullprint doctor` for the choices (docs/cups.md).")
