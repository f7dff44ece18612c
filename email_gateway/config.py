"""The mail gateway's settings (`pullprint.config.load(GatewayConfig, "mail")`, ``PULLPRINT_MAIL_<FIELD>``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pullprint.config import address_problem


@dataclass
class GatewayConfig:
    bind: str = "127.0.0.1:2525"
    hostname: str = "pullprint"               # the name in the SMTP greeting
    # Mail to these addresses is held for release at any printer (lower case).
    print_addresses: list[str] = field(default_factory=lambda: ["print@pullprint.example"])
    # Mail to PRINTER@this domain prints at once at that printer, when its operator opened it to mail
    # (`pullprint printer add ID --direct-mail`); anything else is refused, nothing held. "": off.
    printer_address_domain: str = ""
    # Where jobs go: the cluster's public address (HAProxy), the cluster CA, this gateway's own
    # submitting-host credential (`pullprint submitter add mail1`; PULLPRINT_MAIL_SUBMIT_TOKEN_FILE).
    submit_url: str = "https://127.0.0.1:8443"
    ca_file: str = ""
    submit_token: str = ""
    # STARTTLS with this certificate; a mail is taken only after STARTTLS unless require_starttls is off.
    cert_file: str = ""
    key_file: str = ""
    require_starttls: bool = True
    # Bounds: the whole mail (SMTP SIZE; 552 past it), the parts of one mail, one sender's mails per window.
    max_message_bytes: int = 25 * 1024 * 1024
    max_parts: int = 10
    mails_per_sender: int = 20
    sender_window_seconds: float = 600
    # The reply to the sender: through this relay (HOST:PORT; "" sends none), from this address.
    relay: str = ""
    reply_from: str = "pullprint@pullprint.example"
    reply_delay_seconds: float = 2.0
    release_hint: str = "Badge in (or type your user name and PIN) at any pullprint printer to print them."
    submit_timeout: float = 30.0

    def __repr__(self) -> str:  # never the credential in a log line or a traceback
        return f"GatewayConfig(bind={self.bind!r}, print_addresses={self.print_addresses!r}, " \
               f"printer_address_domain={self.printer_address_domain!r}, submit_url=" \
               f"{self.submit_url!r}, submit_token=<{len(self.submit_token)} chars>)"

    def problems(self) -> list[str]:
        found = [p for p in (address_problem("mail.bind", self.bind),) if p]
        if not self.submit_token:
            found.append("mail.submit_token is not set (PULLPRINT_MAIL_SUBMIT_TOKEN_FILE: this gateway's "
                         "credential from `pullprint submitter add HOST`)")
        if self.submit_url.startswith("https://") and not self.ca_file:
            found.append("mail.ca_file is not set (the cluster CA, to check the load balancer's certificate)")
        if self.require_starttls and not (self.cert_file and self.key_file):
            found.append("mail.cert_file and mail.key_file are needed for STARTTLS (or turn require_starttls off)")
        if not self.print_addresses or any("@" not in a or a != a.strip().lower() for a in self.print_addresses):
            found.append("mail.print_addresses: lower-case addresses (print@example.org), at least one")
        domain = self.printer_address_domain
        if domain and ("@" in domain or domain != domain.strip().lower() or "." not in domain
                       or any(a.endswith("@" + domain) for a in self.print_addresses)):
            found.append("mail.printer_address_domain: a lower-case domain of its own (printers.example.org), "
                         "not that of a print address")
        if self.relay and (problem := address_problem("mail.relay", self.relay)):
            found.append(problem)
        return found
