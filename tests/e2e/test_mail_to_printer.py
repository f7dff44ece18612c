"""Mail to a printer's own address (HP ePrint's per-printer addresses) against a real cluster: a real SMTP
conversation with the gateway; a printer its operator opened to mail prints the document at once, once,
its health checked as at any release; every other printer address is refused with nothing held."""

from __future__ import annotations

import email
import email.policy
import shutil
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from localcluster.cluster import PRINT_ADDRESS, PRINTER_MAIL_DOMAIN, LocalCluster
from tests.e2e.conftest import ONE_PAGE_PDF as PDF
from tests.e2e.conftest import analyst_call, cluster_state_dir, login, received_hashes, sha, wait_for

pytestmark = pytest.mark.e2e

HEALTH_MAX_AGE = 0.5


@pytest.fixture(scope="module")
def cluster():
    state = cluster_state_dir()
    # p1 prints mail to p1@printers.pullprint.example at once; p2 does not.
    with LocalCluster(state, n_collectors=2, n_printers=2, with_cupsd=False, with_mail=True,
                      direct_mail_printers=("p1",),
                      extra_env={"PULLPRINT_MAIL_REPLY_DELAY_SECONDS": "0.2",
                                 "PULLPRINT_COLLECTOR_HEALTH_MAX_AGE": str(HEALTH_MAX_AGE)}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _mail(sender: str, to: str, title: str, data: bytes) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, f"print {title}"
    message["Message-ID"] = make_msgid(domain="client.example")
    message.set_content("please print")
    message.add_attachment(data, maintype="application", subtype="pdf", filename=title)
    return message


def _send(cluster: LocalCluster, message: EmailMessage, *recipients: str) -> tuple[int, str]:
    host, port = cluster.smtp.split(":")
    with smtplib.SMTP(host, int(port), timeout=60) as client:
        client.ehlo("workstation.client.example")
        client.starttls(context=ssl.create_default_context(cafile=cluster.ca_file))
        client.ehlo("workstation.client.example")
        assert client.mail(str(message["From"]))[0] == 250
        for recipient in recipients or (str(message["To"]),):
            code, text = client.rcpt(recipient)
            if code != 250:
                return code, text.decode()
        code, text = client.data(message.as_bytes(policy=email.policy.SMTP))
        return code, text.decode()


def _held_titles(cluster: LocalCluster, user: dict) -> list[str]:
    answer = login(cluster, cluster.printers[1]["id"], badge=user["badge"])
    assert answer.status_code == 201, answer.text
    return [j["title"] for j in answer.json()["jobs"]]


def _reply_to(cluster: LocalCluster, to: str, subject: str) -> str:
    def find() -> str | None:
        for path in sorted(cluster.mail_outbox.glob("*.eml")):
            reply = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if str(reply["To"]) == to and subject in str(reply["Subject"]):
                return f"{reply['Subject']}\n{reply.get_content()}"
        return None
    return wait_for(find, 15, f"the reply about {subject}")


def _user(cluster: LocalCluster, name: str) -> dict:
    return next(u for u in cluster.users if u["name"] == name)


def test_mail_to_an_open_printer_prints_there_at_once_and_only_once(cluster: LocalCluster) -> None:
    alice = _user(cluster, "alice")
    p1 = cluster.printers[0]
    assert p1["mail_address"] == f"p1@{PRINTER_MAIL_DOMAIN}"
    data = PDF + b"% boarding pass\n"
    message = _mail(alice["email"], p1["mail_address"], "Boarding pass.pdf", data)
    code, text = _send(cluster, message)
    assert code == 250 and "1 sent to p1, 0 held" in text, text
    assert received_hashes(p1).count(sha(data)) == 1  # at the printer before the SMTP answer
    assert "Boarding pass.pdf" not in _held_titles(cluster, alice)
    jobs = [j for j in analyst_call(cluster, "GET", "/jobs").json()["jobs"] if j["title"] == "Boarding pass.pdf"]
    assert [j["state"] for j in jobs] == ["printed"]
    # The sending MTA delivers the same mail again (a lost 250): it is not printed twice.
    assert _send(cluster, message)[0] == 250
    time.sleep(1)
    assert received_hashes(p1).count(sha(data)) == 1
    reply = _reply_to(cluster, alice["email"], "Boarding pass.pdf")
    assert reply.startswith("Printed:") and "Boarding pass.pdf" in reply and "at p1" in reply


def test_a_printer_not_opened_to_mail_or_unknown_is_refused_and_nothing_is_held(cluster: LocalCluster) -> None:
    bob = _user(cluster, "bob")
    before = analyst_call(cluster, "GET", "/jobs").json()["jobs"]
    for address, expected in ((f"p2@{PRINTER_MAIL_DOMAIN}", "does not print mail"),
                              (f"p9@{PRINTER_MAIL_DOMAIN}", "no printer p9")):
        code, text = _send(cluster, _mail(bob["email"], address, "secret.pdf", PDF), address)
        assert code == 550 and expected in text, (address, code, text)
    # One printer per mail.
    code, _ = _send(cluster, _mail(bob["email"], "p1", "two.pdf", PDF),
                    f"p1@{PRINTER_MAIL_DOMAIN}", f"p2@{PRINTER_MAIL_DOMAIN}")
    assert code == 452
    assert analyst_call(cluster, "GET", "/jobs").json()["jobs"] == before
    assert received_hashes(cluster.printers[1]) == []


def test_a_jammed_open_printer_holds_the_mail_for_a_badge_release(cluster: LocalCluster) -> None:
    carol = _user(cluster, "carol")
    p1 = cluster.printers[0]
    data = PDF + b"% minutes\n"
    cluster.sim.control.set_fault("p1", "jam")
    try:
        time.sleep(HEALTH_MAX_AGE + 0.3)  # the cached reading is old: the release reads the printer again
        code, text = _send(cluster, _mail(carol["email"], p1["mail_address"], "Minutes.pdf", data))
        assert code == 250 and "0 sent to p1, 1 held" in text, text
        assert sha(data) not in received_hashes(p1)
    finally:
        cluster.sim.control.clear("p1")
        time.sleep(HEALTH_MAX_AGE + 0.3)  # the jammed reading ages out
    assert "Minutes.pdf" in _held_titles(cluster, carol)  # releasable with a badge, at any printer
    reply = _reply_to(cluster, carol["email"], "Minutes.pdf")
    assert "held for you instead" in reply and "jam" in reply.lower()


def test_a_mail_to_the_print_address_and_a_printer_prints_at_the_printer(cluster: LocalCluster) -> None:
    alice = _user(cluster, "alice")
    data = PDF + b"% both\n"
    code, text = _send(cluster, _mail(alice["email"], PRINT_ADDRESS, "Both.pdf", data),
                       PRINT_ADDRESS, cluster.printers[0]["mail_address"])
    assert code == 250 and "1 sent to p1" in text, text
    assert received_hashes(cluster.printers[0]).count(sha(data)) == 1
    assert "Both.pdf" not in _held_titles(cluster, alice)
