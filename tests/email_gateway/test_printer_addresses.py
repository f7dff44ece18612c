"""Mail to a printer's own address, the gateway's part: which addresses are printers, the setting's checks,
and the reply that says where a document went."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from email_gateway.config import GatewayConfig
from email_gateway.reply import Outcome, compose
from email_gateway.server import PrintByMail


def _gateway(**settings: object) -> PrintByMail:
    cfg = GatewayConfig(print_addresses=["print@example.org"], **settings)  # type: ignore[arg-type]
    return PrintByMail(cfg, cluster=None, replier=None)  # type: ignore[arg-type]


def _rcpt(gateway: PrintByMail, envelope: SimpleNamespace, address: str) -> str:
    return asyncio.run(gateway.handle_RCPT(None, None, envelope, address, []))


def test_printer_addresses_are_taken_only_in_their_own_domain() -> None:
    gateway = _gateway(printer_address_domain="printers.example.org")
    envelope = SimpleNamespace(rcpt_tos=[])
    assert _rcpt(gateway, envelope, "Lib-2F@Printers.Example.org").startswith("250")
    assert envelope.print_at == "Lib-2F"  # printer ids are case-sensitive: as written
    assert _rcpt(gateway, envelope, "print@example.org").startswith("250")
    assert _rcpt(gateway, envelope, "p2@printers.example.org").startswith("452")  # one printer per mail
    assert _rcpt(gateway, SimpleNamespace(rcpt_tos=[]), "p1@example.org").startswith("550")
    assert _rcpt(gateway, SimpleNamespace(rcpt_tos=[]), "@printers.example.org").startswith("550")
    # Off by default: printer addresses are refused like any unknown address.
    assert _rcpt(_gateway(), SimpleNamespace(rcpt_tos=[]), "p1@printers.example.org").startswith("550")


@pytest.mark.parametrize("domain", ["Printers.example.org", "@printers.example.org", "localhost", "example.org"])
def test_a_bad_printer_domain_is_a_config_problem(domain: str) -> None:
    cfg = GatewayConfig(print_addresses=["print@example.org"], printer_address_domain=domain, submit_token="t",
                        require_starttls=False, submit_url="http://127.0.0.1:1")
    assert any("printer_address_domain" in p for p in cfg.problems())


def test_the_reply_says_what_printed_where_and_what_is_held_instead() -> None:
    outcome = Outcome("alice@example.org", "Trip", "<m@x>", printed=[("Boarding pass.pdf", 1, "lib-2f")])
    reply = compose(outcome, sender="pullprint@example.org", release_hint="Badge in.")
    assert reply["Subject"] == "Printed: Trip"
    assert "Boarding pass.pdf (1 page): at lib-2f" in reply.get_content()
    outcome = Outcome("alice@example.org", "Trip", "<m@x>", held=[("Minutes.pdf", 2, "")],
                      not_printed_at=[("Minutes.pdf", "The printer has a paper jam")])
    text = compose(outcome, sender="pullprint@example.org", release_hint="Badge in.").get_content()
    assert "held for you instead" in text and "Minutes.pdf: The printer has a paper jam" in text
    assert "Badge in." in text
