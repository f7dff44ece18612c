"""The SMTP side of the mail gateway (aiosmtpd): who may send, what is taken, and the SMTP answers.

- Only after STARTTLS (530 before it, unless `require_starttls` is off), only to a print address
  (550 5.1.1 otherwise), at most `max_message_bytes` (552), at most `mails_per_sender` per window
  per envelope sender (451 4.7.1: the sending MTA tries later).
- The From header must be the envelope sender (550 5.7.1): which sender a mail is from is only as
  good as the relay's SPF/DKIM/DMARC checks (docs/email.md says what the relay must check).
- 250 only after every printable part is held (durable on two collectors); 451 when the cluster
  cannot take a part now (the MTA sends it again; parts already held are not held twice); 550 with
  the analyst's reason when the sender is not served (unknown, outside the serviced domains, denied).
- No mail is kept: it lives in memory for the length of its SMTP transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
import ssl
import threading
import time
from collections import defaultdict, deque
from typing import Any

from aiosmtpd.controller import Controller

from email_gateway.config import GatewayConfig
from email_gateway.message import BadMail, Mail, Part, parse
from email_gateway.reply import Outcome, Replier
from email_gateway.submit import ClusterClient, Refused, TryLater
from pullprint import config as pp_config
from pullprint.log import new_request_id, request_scope, setup
from pullprint.render import RenderError, printable

log = logging.getLogger("pullprint.mail")

# The analyst's refusals that are about the sender, not one part: the whole mail is refused.
SENDER_REFUSALS = {"not-serviced", "unknown-user", "user-denied", "bad-field",
                   "unknown-printer", "not-a-mail-printer", "bad-printer"}  # the last three: a printer's address


class SenderLimit:
    """At most `count` mails per `window` seconds from one envelope sender (in this process)."""

    def __init__(self, count: int, window: float, clock: Any = time.monotonic) -> None:
        self.count, self.window, self.clock = count, window, clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, sender: str) -> bool:
        now = self.clock()
        with self._lock:
            times = self._seen[sender]
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.count:
                return False
            times.append(now)
            if len(self._seen) > 100_000:  # forget idle senders rather than grow without bound
                for key in [k for k, v in self._seen.items() if not v][:50_000]:
                    del self._seen[key]
            return True


class PrintByMail:
    """The aiosmtpd handler."""

    def __init__(self, cfg: GatewayConfig, cluster: ClusterClient, replier: Replier) -> None:
        self.cfg, self.cluster, self.replier = cfg, cluster, replier
        self.addresses = {a.lower() for a in cfg.print_addresses}
        self.printer_domain = cfg.printer_address_domain
        self.limit = SenderLimit(cfg.mails_per_sender, cfg.sender_window_seconds)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if not address:
            return "550 5.7.1 bounces are not printed"
        if not self.limit.admit(address.lower()):
            return "451 4.7.1 too many mails from you; try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        printer = self.printer_of(address)
        if printer:
            # One printer per mail; a mail to a printer and to a print address prints at the printer.
            if getattr(envelope, "print_at", "") not in ("", printer):
                return "452 4.5.3 one printer address per mail"
            envelope.print_at = printer
        elif address.lower() not in self.addresses:
            return "550 5.1.1 not a print address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def printer_of(self, address: str) -> str:
        """The printer id of PRINTER@printer_address_domain (as written: ids are case-sensitive), or ""."""
        local, _, domain = address.rpartition("@")
        if not self.printer_domain or domain.lower() != self.printer_domain or not local:
            return ""
        return local

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        try:
            mail = parse(raw, max_parts=self.cfg.max_parts)
        except BadMail as exc:
            return f"550 5.6.0 {exc}"
        if mail.sender != str(envelope.mail_from).lower():
            return "550 5.7.1 the From address must be the envelope sender"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.take, mail, raw, getattr(envelope, "print_at", ""))

    def take(self, mail: Mail, raw: bytes, print_at: str = "") -> str:
        """Hold every part of `mail` (and print it at once at `print_at`, a printer opened to mail); the SMTP answer."""
        with request_scope(f"mail-{new_request_id()}"):  # the id the collectors log this mail's jobs under
            digest = hashlib.sha256((mail.message_id or "").encode() if mail.message_id else raw).hexdigest()[:40]
            outcome = Outcome(mail.sender, mail.subject, mail.message_id,
                              refused=[(r.title, r.reason) for r in mail.refused])
            for index, part in enumerate(mail.parts, 1):
                try:
                    data, kind = printable(part.data, part.title, part.content_type)
                except RenderError as exc:
                    outcome.refused.append((part.title, exc.reason))
                    continue
                try:
                    held = self.cluster.submit(mail.sender, Part(part.title, kind, data), f"mail-{digest}-{index}",
                                               print_at=print_at, group=f"mail-{digest[:16]}")
                except TryLater as exc:
                    log.warning("a mail from a sender could not be taken now: %s", exc)
                    return "451 4.3.0 the print service cannot take this mail now; it will be tried again"
                except Refused as exc:
                    if exc.code in SENDER_REFUSALS:
                        log.info("a mail refused: %s", exc.code)
                        return f"550 5.7.1 {exc.message}"
                    outcome.refused.append((part.title, exc.message))
                    continue
                if held.printed:
                    outcome.printed.append((part.title, held.pages, held.printed))
                else:
                    outcome.held.append((part.title, held.pages, held.release_code))
                    if held.not_printed:
                        outcome.not_printed_at.append((part.title, held.not_printed))
                log.info("mail part held as job %s (%d bytes, %s)%s", held.job_id, len(part.data), part.content_type,
                         f", sent to {held.printed}" if held.printed else "")
            self.replier.send_later(outcome)
            sent = f"{len(outcome.printed)} sent to {print_at}, " if print_at else ""
            return f"250 OK: {sent}{len(outcome.held)} held, {len(outcome.refused)} not printed"


def tls_context(cfg: GatewayConfig) -> ssl.SSLContext | None:
    if not cfg.cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return context


def build(cfg: GatewayConfig) -> Controller:
    host, _, port = cfg.bind.rpartition(":")
    cluster = ClusterClient(cfg.submit_url, cfg.submit_token, cfg.ca_file, timeout=cfg.submit_timeout)
    replier = Replier(cfg.relay, cfg.reply_from, cfg.release_hint, cfg.reply_delay_seconds)
    return Controller(PrintByMail(cfg, cluster, replier), hostname=host, port=int(port),
                      server_hostname=cfg.hostname, tls_context=tls_context(cfg),
                      require_starttls=cfg.require_starttls and bool(cfg.cert_file),
                      data_size_limit=cfg.max_message_bytes, enable_SMTPUTF8=True, timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pullprint mail-gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="JSON settings file with a 'mail' section")
    parser.add_argument("--bind", help="HOST:PORT to listen on (mail.bind)")
    parser.add_argument("--check-config", action="store_true", help="check the settings and exit")
    args = parser.parse_args(argv)
    overrides = {"bind": args.bind} if args.bind else {}
    if args.check_config:
        return pp_config.check_command(GatewayConfig, "mail", path=args.config, overrides=overrides)
    setup("mail")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command (and address) at INFO
    cfg = pp_config.load(GatewayConfig, "mail", path=args.config, overrides=overrides)
    problems = cfg.problems()
    if problems:
        for problem in problems:
            log.error("%s", problem)
        return 1
    controller = build(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    log.info("mail gateway listening on %s for %s", cfg.bind, ", ".join(cfg.print_addresses))
    stop.wait()
    controller.stop()
    return 0
