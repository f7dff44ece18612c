"""The one reply a sender gets for a mail: what is held and where to release it, what was refused and why."""

from __future__ import annotations

import logging
import smtplib
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

log = logging.getLogger("pullprint.mail")


@dataclass
class Outcome:
    """What became of one mail's parts."""

    sender: str
    subject: str
    message_id: str
    held: list[tuple[str, int | None, str]] = field(default_factory=list)  # (title, pages, release code or "")
    refused: list[tuple[str, str]] = field(default_factory=list)      # (title, reason)
    # Mail to a printer's own address: sent there (title, pages, printer), or held instead (title, why).
    printed: list[tuple[str, int | None, str]] = field(default_factory=list)
    not_printed_at: list[tuple[str, str]] = field(default_factory=list)


def compose(outcome: Outcome, *, sender: str, release_hint: str) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = outcome.sender
    taken = outcome.held or outcome.printed
    reply["Subject"] = (f"Printed: {outcome.subject}" if outcome.printed and not outcome.held and not outcome.refused
                        else f"Held for printing: {outcome.subject}" if taken and not outcome.refused
                        else f"Not printed: {outcome.subject}" if not taken
                        else f"Partly held for printing: {outcome.subject}")
    reply["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if outcome.message_id:
        reply["In-Reply-To"] = outcome.message_id
        reply["References"] = outcome.message_id
    # Never an auto-reply loop: mark it as one, and the gateway never answers mail marked so.
    reply["Auto-Submitted"] = "auto-replied"
    lines = []
    if outcome.printed:
        lines.append("Sent to the printer:")
        lines += [f"  - {title}" + (f" ({pages} page{'s' if pages != 1 else ''})" if pages else "") + f": at {printer}"
                  for title, pages, printer in outcome.printed]
        lines.append("")
    if outcome.not_printed_at:
        lines.append("Not printed at once (held for you instead):")
        lines += [f"  - {title}: {why}" for title, why in outcome.not_printed_at]
        lines.append("")
    if outcome.held:
        lines.append("Held for you:")
        for title, pages, code in outcome.held:
            lines.append(f"  - {title}" + (f" ({pages} page{'s' if pages != 1 else ''})" if pages else ""))
            if code:
                lines.append(f"    release code: {code[:3]} {code[3:6]} {code[6:]}")
        if any(code for _, _, code in outcome.held):
            lines += ["", "At any pullprint printer, choose \"Release code\" and type the code of the document: "
                      "it prints that document, once.", ""]
        else:
            lines += ["", release_hint, ""]
    if outcome.refused:
        lines.append("Not printed:")
        lines += [f"  - {title}: {reason}" for title, reason in outcome.refused]
        lines.append("")
    reply.set_content("\n".join(lines), cte="8bit")  # readable as it is; lines stay far below 998
    return reply


class Replier:
    """Sends replies through the relay, each `delay` seconds after its mail, off the SMTP session's thread."""

    def __init__(self, relay: str, sender: str, release_hint: str, delay: float) -> None:
        self.relay, self.sender, self.release_hint, self.delay = relay, sender, release_hint, delay

    def send_later(self, outcome: Outcome) -> threading.Timer | None:
        if not self.relay:
            log.info("no relay set: no reply to a mail (%d held, %d refused)", len(outcome.held),
                     len(outcome.refused))
            return None
        timer = threading.Timer(self.delay, self.send, args=(outcome,))
        timer.daemon = True
        timer.start()
        return timer

    def send(self, outcome: Outcome) -> None:
        host, _, port = self.relay.rpartition(":")
        message = compose(outcome, sender=self.sender, release_hint=self.release_hint)
        try:
            with smtplib.SMTP(host, int(port), timeout=30) as relay:
                relay.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("reply to a mail not sent: relay %s: %s", self.relay, exc.__class__.__name__)
